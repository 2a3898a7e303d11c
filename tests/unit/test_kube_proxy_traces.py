"""kube-proxy's own packet-flow expectations (../shared/corpus/kube-proxy-traces): the
endpoints a Service sends a packet to (= the DNAT destinations of pktpath's paths), the
verdict, and whether the packet is masqueraded.

Each trace file holds a ruleset and a node; the test builds a snapshot around it: the node
address on eth0, pods behind cni0, 127.0.0.1 on lo, route_localnet=1 as kube-proxy sets it.
Where kube-proxy's tracer and the kernel must differ (its tracer ignores conntrack, marks and
routing), the case is listed in KERNEL_DIFFERS with the reason; pktpath follows the kernel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pktpath.cli.packet_args import build_packet
from pktpath.engine.simulate import simulate
from pktpath.errors import ParseError
from pktpath.io.snapshot import load_snapshot

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "kube-proxy-traces"
FILES = sorted(CORPUS.glob("*.json")) if CORPUS.exists() else []

# (test, trace name) -> why the kernel's answer differs from kube-proxy's tracer.
KERNEL_DIFFERS: dict[tuple[str, str], str] = {}


def node_snapshot(case: dict[str, Any], where: Path) -> Path:
    node_ip = case["node_ips"][0]
    prefix = case.get("node_cidr", "192.168.0.0/24").split("/")[1]
    pod_cidr = case.get("pod_cidr") or "10.0.0.0/8"
    where.mkdir(parents=True, exist_ok=True)
    (where / "iptables-save.txt").write_text(case["iptables_save_complete"] or case["iptables_save"])

    def link(index: int, name: str, addrs: list[tuple[str, int, str]], kind: str | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {"ifindex": index, "ifname": name, "flags": ["UP", "LOWER_UP"], "mtu": 1500,
                                "operstate": "UP", "address": f"02:00:00:00:00:0{index}",
                                "addr_info": [{"family": "inet", "local": a, "prefixlen": p, "scope": s,
                                               "label": name} for a, p, s in addrs]}
        if name == "lo":
            info["flags"] = ["LOOPBACK", "UP", "LOWER_UP"]
            info["link_type"] = "loopback"
        if kind:
            info["linkinfo"] = {"info_kind": kind}
        return info

    links = [link(1, "lo", [("127.0.0.1", 8, "host")]), link(2, "eth0", [(node_ip, int(prefix), "global")]),
             link(3, "cni0", [(pod_cidr.split("/")[0].rsplit(".", 1)[0] + ".1", int(pod_cidr.split("/")[1]),
                               "global")], "bridge")]
    (where / "ip-addr.json").write_text(json.dumps(links))
    gw = node_ip.rsplit(".", 1)[0] + ".1"
    (where / "ip-route.json").write_text(json.dumps([
        {"dst": "default", "gateway": gw, "dev": "eth0", "flags": []}]))
    (where / "sysctl.txt").write_text("net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.route_localnet = 1\n"
                                      "net.ipv4.conf.all.forwarding = 1\nnet.ipv4.conf.default.forwarding = 1\n")
    return where


def entry(case: dict[str, Any], src: str) -> dict[str, Any]:
    """Where a packet from ``src`` enters: a pod (cni0), the node itself (local), or outside (eth0)."""
    if src in case["local_ips"]:
        return {"iif": None, "local": True}
    pod_net = (case.get("pod_cidr") or "10.0.0.0/8").split("/")[0].split(".")[0] + "."
    if src.startswith(pod_net):
        return {"iif": "cni0", "local": False}
    return {"iif": "eth0", "local": False}


def observed(case: dict[str, Any], snap_dir: Path, trace: dict[str, Any]) -> tuple[str, bool]:
    snap = load_snapshot(snap_dir)
    pkt = build_packet(snap.net, src=trace["sourceIP"], dst=trace["destIP"], proto=trace["protocol"], sport="40000",
                       dport=str(trace["destPort"]), icmp_type=None, tcp_flags=None, mark=None, ttl=None,
                       length=None, mac_src=None, uid=None, **entry(case, trace["sourceIP"]))
    outcomes = simulate(snap, pkt)
    probs = [o.probability for o in outcomes]
    assert None in probs or abs(sum(p for p in probs if p is not None) - 1.0) < 1e-6, probs  # shares sum to 1
    dnat, verdicts, masq = set(), set(), False
    for o in outcomes:
        ids = [e.id for e in o.trace]
        rules = [e.rule or "" for e in o.trace]
        if any("-j MASQUERADE" in r for r in rules):
            masq = True
        d = o.result.disposition
        dnat_rules = [r for r in rules if "-j DNAT" in r]
        if dnat_rules:
            dnat.add(dnat_rules[-1].split("--to-destination ")[1].split()[0])
        elif d in ("rejected", "dropped"):
            verdicts.add("REJECT" if d == "rejected" else "DROP")
        elif any(i.startswith("filter:") and "KUBE" in i and rules[n].endswith("-j ACCEPT")
                 for n, i in enumerate(ids)):
            verdicts.add("ACCEPT")
    if dnat:
        return ", ".join(sorted(dnat)), masq
    return ", ".join(sorted(verdicts)), masq


CASES = [(f, t) for f in FILES for t in json.loads(f.read_text())["traces"]]


@pytest.mark.skipif(not CASES, reason="../shared/corpus/kube-proxy-traces is absent")
@pytest.mark.parametrize("path,trace", CASES, ids=[f"{f.stem[:60]}::{t['name']}" for f, t in CASES])
def test_kube_proxy_expectation(path: Path, trace: dict[str, Any], tmp_path: Path) -> None:
    case = json.loads(path.read_text())
    key = (case["test"], trace["name"])
    snap_dir = node_snapshot(case, tmp_path / "snap")
    if case["iptables_save_complete"] is None:
        # kube-proxy's static tracer self-test feeds its tracer text that iptables-restore itself
        # refuses (built-in chains without a policy, multi-word comments without quotes): pktpath
        # must refuse it too, at the first such line, rather than trace it.
        with pytest.raises(ParseError) as info:
            load_snapshot(snap_dir)
        assert info.value.line == 2 and "bad policy '-'" in info.value.msg
        return
    got = observed(case, snap_dir, trace)
    want = (", ".join(sorted(x.strip() for x in trace["output"].split(","))) if trace["output"] else "",
            trace["masq"])
    if key in KERNEL_DIFFERS:
        pytest.xfail(KERNEL_DIFFERS[key])
    assert got == want
