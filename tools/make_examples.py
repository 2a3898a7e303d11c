#!/usr/bin/env python3
"""Build the example hosts in fresh network namespaces and dump them into ``examples/``.

    sudo python3 tools/make_examples.py build [NAME ...]   # rebuild and dump snapshots (root)
    python3 tools/make_examples.py docs                    # README.md per example + docs/examples.md

``build`` creates, for each example, a handful of uniquely named namespaces
(``ppe-<pid>-...``): the host itself, its pods or containers, and a "net" namespace that
holds the far ends of its uplinks.  It sets up interfaces, addresses, routes, ip rules,
sysctls and ipsets the way the real software does (Calico's felix, kube-proxy, dockerd,
ufw, firewalld, a hand-configured router), loads a ruleset written in the exact shape those
programs write with ``iptables-legacy-restore``, then dumps the host with the standard
commands (``iptables-legacy-save``, ``ip -j ...``, ``sysctl -a``, ``ipset save``), as
docs/snapshot.md describes.  Every namespace it created is deleted again, whatever happens;
nothing else on the machine is touched.

The kernel has no dummy/vxlan/vlan devices here: where a host has a VXLAN device
(``vxlan.calico``) it is built as a veth of that name, and the README says so.

``docs`` needs no root: it runs ``pktpath`` on every documented question and writes each
example's README.md and docs/examples.md with the real output.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PREFIX = f"ppe-{os.getpid()}-"
SNAPSHOT_FILES = ("iptables-save.txt", "ipset-save.txt", "ip-addr.json", "ip-link.json", "ip-route.json",
                  "ip-rule.json", "sysctl.txt")
SYSCTL_KEEP = re.compile(
    r"^(net\.ipv4\.ip_forward"
    r"|net\.ipv4\.conf\.[^.]+\.(forwarding|rp_filter|accept_local|route_localnet|src_valid_mark)"
    r"|net\.netfilter\.nf_conntrack_tcp_(loose|be_liberal)) = ")


# ====================================================================== namespaces
class Netns:
    """One network namespace we created; commands run inside it with ``ip netns exec``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *cmd: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(["ip", "netns", "exec", self.name, *cmd], input=input, text=True,
                              capture_output=True, timeout=60)
        if check and proc.returncode:
            raise RuntimeError(f"[{self.name}] {shlex.join(cmd)}: {proc.stderr.strip()}")
        return proc.stdout

    def ip(self, line: str) -> None:
        self.run("ip", *shlex.split(line))

    def ip_batch(self, lines: list[str]) -> None:
        self.run("ip", "-batch", "-", input="".join(line + "\n" for line in lines))

    def sysctls(self, items: list[tuple[str, str]]) -> None:
        self.run("sysctl", "-q", "-w", *[f"{k}={v}" for k, v in items])


class Lab:
    """Creates namespaces named ``ppe-<pid>-<short>`` and deletes every one of them on exit."""

    def __init__(self) -> None:
        self.created: list[Netns] = []
        self.pairs = 0

    def ns(self, short: str) -> Netns:
        ns = Netns(PREFIX + short)
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
        self.created.append(ns)
        ns.ip("link set lo up")
        ns.sysctls([("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1")])
        return ns

    def veth(self, a: Netns, a_name: str, b: Netns, b_name: str, *, a_mac: str | None = None,
             b_mac: str | None = None, mtu: int | None = None) -> None:
        """A veth pair: a_name in a, b_name in b (both up)."""
        self.pairs += 1
        tmp = f"ppe-tmp{self.pairs}"
        mtu_args = f" mtu {mtu}" if mtu else ""
        a.ip(f"link add {a_name}{mtu_args} type veth peer name {tmp}{mtu_args}")
        a.ip(f"link set {tmp} netns {b.name}")
        b.ip(f"link set {tmp} name {b_name}")
        if a_mac:
            a.ip(f"link set {a_name} address {a_mac}")
        if b_mac:
            b.ip(f"link set {b_name} address {b_mac}")

    def close(self) -> None:
        while self.created:
            ns = self.created.pop()
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


@contextmanager
def lab() -> Iterator[Lab]:
    """A Lab that is torn down on return, exception, Ctrl-C or SIGTERM."""
    the_lab = Lab()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield the_lab
    finally:
        the_lab.close()
        signal.signal(signal.SIGTERM, previous)


def load(host: Netns, ruleset: str, ipsets: str = "") -> None:
    if ipsets:
        host.run("ipset", "restore", input=ipsets)
    host.run("iptables-legacy-restore", "-w", "10", input=ruleset)


def dump(host: Netns, out: Path) -> None:
    """The snapshot files, each the output of its standard command (docs/snapshot.md)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in SNAPSHOT_FILES:
        (out / name).unlink(missing_ok=True)
    save = host.run("iptables-legacy-save")
    lines = [line for line in save.splitlines() if not line.startswith(("# Generated", "# Completed"))]
    (out / "iptables-save.txt").write_text("\n".join(lines) + "\n")
    ipsets = host.run("ipset", "save")
    if ipsets.strip():
        (out / "ipset-save.txt").write_text(ipsets)
    (out / "ip-addr.json").write_text(host.run("ip", "-j", "addr", "show"))
    (out / "ip-link.json").write_text(host.run("ip", "-j", "-d", "link", "show"))
    (out / "ip-route.json").write_text(host.run("ip", "-j", "route", "show", "table", "all"))
    (out / "ip-rule.json").write_text(host.run("ip", "-j", "rule", "show"))
    sysctl = [line for line in host.run("sysctl", "-a", check=False).splitlines() if SYSCTL_KEEP.match(line)]
    (out / "sysctl.txt").write_text("\n".join(sorted(sysctl)) + "\n")


def conf(ifaces: list[str], **values: str) -> list[tuple[str, str]]:
    """net.ipv4.conf.<if>.<key> = value for every interface (dots in names become '/')."""
    return [(f"net.ipv4.conf.{i.replace('.', '/')}.{k}", v) for i in ifaces for k, v in values.items()]


def ipset_create(name: str, kind: str, members: list[str]) -> str:
    """``ipset restore`` input; the hash seed is fixed so that regenerating gives the same file."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    lines = [f"create {name} {kind} family inet hashsize 1024 maxelem 1048576 initval {seed:#010x}"]
    lines += [f"add {name} {m}" for m in members]
    return "\n".join(lines) + "\n"


# ====================================================================== Kubernetes node
POD_CIDR = "10.244.0.0/16"
NODE_IP = "10.10.0.11"
VXLAN_IP = "10.244.36.128"


@dataclass(frozen=True)
class Pod:
    ns: str
    name: str
    ip: str
    labels: tuple[str, ...] = ()

    @property
    def iface(self) -> str:
        """Calico's host-side name: 'cali' + 11 hex digits of a hash of the workload endpoint."""
        return "cali" + hashlib.sha1(f"k8s/{self.ns}.{self.name}/eth0".encode()).hexdigest()[:11]


LOCAL_PODS = [
    Pod("shop", "frontend-6c9f7d8b5-x2lkq", "10.244.36.130", ("app=frontend",)),
    Pod("shop", "cart-5d8f9c7b6-qr7zt", "10.244.36.131", ("app=cart",)),
    Pod("shop", "redis-0", "10.244.36.132", ("app=redis",)),
    Pod("ingress-nginx", "ingress-nginx-controller-7b9d5c-h4kls", "10.244.36.133", ("app=ingress-nginx",)),
]
REMOTE_BLOCKS = [("10.244.171.0/26", "10.244.171.0"), ("10.244.222.64/26", "10.244.222.64")]
OTHER_NODES = ["10.10.0.10", "10.10.0.12", "10.10.0.13"]


@dataclass(frozen=True)
class Svc:
    ns: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    endpoints: tuple[tuple[str, int, bool], ...]  # ip, port, on this node
    proto: str = "tcp"
    node_port: int | None = None
    local: bool = False  # externalTrafficPolicy: Local
    health_port: int | None = None

    @property
    def spn(self) -> str:
        return f"{self.ns}/{self.name}:{self.port_name}"


SERVICES = [
    Svc("default", "kubernetes", "https", "10.96.0.1", 443, (("10.10.0.10", 6443, False),)),
    Svc("kube-system", "kube-dns", "dns", "10.96.0.10", 53,
        (("10.244.171.2", 53, False), ("10.244.222.66", 53, False)), proto="udp"),
    Svc("kube-system", "kube-dns", "dns-tcp", "10.96.0.10", 53,
        (("10.244.171.2", 53, False), ("10.244.222.66", 53, False))),
    Svc("shop", "cart", "http", "10.96.45.10", 8080, (("10.244.171.7", 8080, False), ("10.244.36.131", 8080, True))),
    Svc("shop", "redis", "redis", "10.96.120.33", 6379, (("10.244.36.132", 6379, True),)),
    Svc("shop", "frontend", "http", "10.96.88.20", 80,
        (("10.244.171.8", 8080, False), ("10.244.36.130", 8080, True)), node_port=30080),
    Svc("ingress-nginx", "ingress-nginx-controller", "https", "10.96.200.5", 443,
        (("10.244.171.9", 443, False), ("10.244.36.133", 443, True)), node_port=31443, local=True,
        health_port=32201),
    Svc("ops", "node-agent", "metrics", "10.96.150.7", 9100,
        (("10.10.0.11", 9100, True), ("10.10.0.12", 9100, False)), node_port=30910),
    Svc("shop", "reviews", "http", "10.96.77.40", 80, ()),
]


def kp_hash(text: str) -> str:
    """kube-proxy's portProtoHash(): base32(sha256(...))[:16]."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def cali_id(*parts: str) -> str:
    """A stable stand-in for the random rule ids felix writes into ``--comment "cali:..."``."""
    return base64.urlsafe_b64encode(hashlib.sha256("/".join(parts).encode()).digest()).decode()[:16]


def felix_name(prefix: str, ident: str) -> str:
    """felix's GetLengthLimitedID(): prefix + id, or prefix + '_' + a hash when over 28 characters."""
    if len(prefix + ident) <= 28:
        return prefix + ident
    digest = base64.urlsafe_b64encode(hashlib.sha256(ident.encode()).digest()).decode()
    return prefix + "_" + digest[:28 - len(prefix) - 1]


class Rules:
    """iptables-restore input for one table, chains declared in order of first mention."""

    def __init__(self, table: str, builtins: list[tuple[str, str]]) -> None:
        self.table = table
        self.builtins = builtins
        self.chains: list[str] = []
        self.rules: list[str] = []

    def chain(self, *names: str) -> None:
        for n in names:
            if n not in self.chains and n not in dict(self.builtins):
                self.chains.append(n)

    def add(self, chain: str, spec: str) -> None:
        self.chain(chain)
        self.rules.append(f"-A {chain} {spec}")

    def cali(self, chain: str, spec: str = "", *, comment: str | None = None, tail: str = "") -> None:
        """A felix rule: matches, then the cali:<id> comment (and a human one), then the rest."""
        self.chain(chain)
        n = sum(1 for r in self.rules if r.startswith(f"-A {chain} "))
        text = f'-m comment --comment "cali:{cali_id(self.table, chain, str(n))}"'
        if comment:
            text += f' -m comment --comment "{comment}"'
        self.rules.append(" ".join(p for p in (f"-A {chain}", spec, text, tail) if p))

    def text(self) -> str:
        out = [f"*{self.table}"] + [f":{c} {p} [0:0]" for c, p in self.builtins]
        out += [f":{c} - [0:0]" for c in self.chains] + self.rules + ["COMMIT"]
        return "\n".join(out) + "\n"


FILTER = [("INPUT", "ACCEPT"), ("FORWARD", "ACCEPT"), ("OUTPUT", "ACCEPT")]
NAT = [("PREROUTING", "ACCEPT"), ("INPUT", "ACCEPT"), ("OUTPUT", "ACCEPT"), ("POSTROUTING", "ACCEPT")]
MANGLE = [("PREROUTING", "ACCEPT"), ("INPUT", "ACCEPT"), ("FORWARD", "ACCEPT"), ("OUTPUT", "ACCEPT"),
          ("POSTROUTING", "ACCEPT")]
RAW = [("PREROUTING", "ACCEPT"), ("OUTPUT", "ACCEPT")]
SECURITY = [("INPUT", "ACCEPT"), ("FORWARD", "ACCEPT"), ("OUTPUT", "ACCEPT")]

# felix's mark bits (IptablesMarkMask 0xffff0000): accept, pass, scratch0, scratch1
M_ACCEPT, M_PASS, M_SCRATCH0 = "0x10000", "0x20000", "0x40000"
FRONTEND_SET = "cali40s:Rk1ZdTVbHcGUZNqRzbmL2sA"
CART_POLICY = "cali-pi-_4yXkQvzOx7hGzYl4uX0"


def k8s_ipsets() -> str:
    return (ipset_create("cali40all-ipam-pools", "hash:net", [POD_CIDR])
            + ipset_create("cali40masq-ipam-pools", "hash:net", [POD_CIDR])
            + ipset_create("cali40all-vxlan-net", "hash:net", OTHER_NODES)
            + ipset_create(FRONTEND_SET, "hash:ip", ["10.244.36.130", "10.244.171.8"]))


def calico_rules(raw: Rules, mangle: Rules, nat: Rules, flt: Rules) -> None:
    """What felix (Calico 3.28, VXLAN, iptables dataplane) writes for the four local pods."""
    # ---- raw: anti-spoofing for workloads (rpfilter), VXLAN untracked
    raw.cali("PREROUTING", tail="-j cali-PREROUTING")
    raw.cali("OUTPUT", tail="-j cali-OUTPUT")
    raw.chain("cali-PREROUTING", "cali-OUTPUT", "cali-rpf-skip", "cali-from-host-endpoint", "cali-to-host-endpoint")
    raw.cali("cali-PREROUTING", tail="-j MARK --set-xmark 0x0/0xf0000")
    raw.cali("cali-PREROUTING", "-p udp", tail="-m udp --dport 4789 -j NOTRACK")
    raw.cali("cali-PREROUTING", "-i cali+", tail=f"-j MARK --set-xmark {M_SCRATCH0}/{M_SCRATCH0}")
    raw.cali("cali-PREROUTING", tail=f"-m mark --mark {M_SCRATCH0}/{M_SCRATCH0} -j cali-rpf-skip")
    raw.cali("cali-PREROUTING",
             tail=f"-m mark --mark {M_SCRATCH0}/{M_SCRATCH0} -m rpfilter --validmark --invert -j DROP")
    raw.cali("cali-PREROUTING", tail=f"-m mark --mark 0x0/{M_SCRATCH0} -j cali-from-host-endpoint")
    raw.cali("cali-PREROUTING", tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    raw.cali("cali-OUTPUT", tail="-j MARK --set-xmark 0x0/0xf0000")
    raw.cali("cali-OUTPUT", tail="-j cali-to-host-endpoint")
    raw.cali("cali-OUTPUT", "-p udp", tail="-m udp --dport 4789 -j NOTRACK")
    raw.cali("cali-OUTPUT", tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")

    # ---- mangle
    mangle.cali("PREROUTING", tail="-j cali-PREROUTING")
    mangle.cali("POSTROUTING", tail="-j cali-POSTROUTING")
    mangle.chain("cali-PREROUTING", "cali-POSTROUTING", "cali-from-host-endpoint", "cali-to-host-endpoint")
    mangle.cali("cali-PREROUTING", tail="-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    mangle.cali("cali-PREROUTING", tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    mangle.cali("cali-PREROUTING", tail="-j cali-from-host-endpoint")
    mangle.cali("cali-PREROUTING", comment="Host endpoint policy accepted packet.",
                tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    mangle.cali("cali-POSTROUTING", tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")
    mangle.cali("cali-POSTROUTING", tail="-j MARK --set-xmark 0x0/0xf0000")
    mangle.cali("cali-POSTROUTING", tail="-m conntrack --ctstate DNAT -j cali-to-host-endpoint")
    mangle.cali("cali-POSTROUTING", comment="Host endpoint policy accepted packet.",
                tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")

    # ---- nat: floating IPs (none), natOutgoing for the pool, the VXLAN source fix-up
    nat.cali("PREROUTING", tail="-j cali-PREROUTING")
    nat.cali("OUTPUT", tail="-j cali-OUTPUT")
    nat.cali("POSTROUTING", tail="-j cali-POSTROUTING")
    nat.chain("cali-PREROUTING", "cali-OUTPUT", "cali-POSTROUTING", "cali-fip-dnat", "cali-fip-snat",
              "cali-nat-outgoing")
    nat.cali("cali-PREROUTING", tail="-j cali-fip-dnat")
    nat.cali("cali-OUTPUT", tail="-j cali-fip-dnat")
    nat.cali("cali-POSTROUTING", tail="-j cali-fip-snat")
    nat.cali("cali-POSTROUTING", tail="-j cali-nat-outgoing")
    nat.cali("cali-POSTROUTING", "-o vxlan.calico",
             tail="-m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL "
                  "-j MASQUERADE --random-fully")
    nat.cali("cali-nat-outgoing",
             tail="-m set --match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst "
                  "-j MASQUERADE --random-fully")

    # ---- filter
    flt.cali("INPUT", tail="-j cali-INPUT")
    flt.cali("FORWARD", tail="-j cali-FORWARD")
    flt.cali("OUTPUT", tail="-j cali-OUTPUT")
    flt.chain("cali-INPUT", "cali-FORWARD", "cali-OUTPUT", "cali-cidr-block", "cali-from-hep-forward",
              "cali-from-host-endpoint", "cali-from-wl-dispatch", "cali-to-hep-forward", "cali-to-host-endpoint",
              "cali-to-wl-dispatch", "cali-wl-to-host")
    flt.cali("cali-INPUT", "-p udp", comment="Allow IPv4 VXLAN packets from allowed hosts",
             tail="-m multiport --dports 4789 -m set --match-set cali40all-vxlan-net src "
                  "-m addrtype --dst-type LOCAL -j ACCEPT")
    flt.cali("cali-INPUT", "-p udp", comment="Drop IPv4 VXLAN packets from non-allowed hosts",
             tail="-m multiport --dports 4789 -m addrtype --dst-type LOCAL -j DROP")
    flt.cali("cali-INPUT", "-i cali+", tail="-g cali-wl-to-host")
    flt.cali("cali-INPUT", tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    flt.cali("cali-INPUT", tail="-j MARK --set-xmark 0x0/0xf0000")
    flt.cali("cali-INPUT", tail="-j cali-from-host-endpoint")
    flt.cali("cali-INPUT", comment="Host endpoint policy accepted packet.",
             tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    flt.cali("cali-FORWARD", tail="-j MARK --set-xmark 0x0/0xe0000")
    flt.cali("cali-FORWARD", tail=f"-m mark --mark 0x0/{M_ACCEPT} -j cali-from-hep-forward")
    flt.cali("cali-FORWARD", "-i cali+", tail="-j cali-from-wl-dispatch")
    flt.cali("cali-FORWARD", "-o cali+", tail="-j cali-to-wl-dispatch")
    flt.cali("cali-FORWARD", tail="-j cali-to-hep-forward")
    flt.cali("cali-FORWARD", tail="-j cali-cidr-block")
    flt.cali("cali-OUTPUT", tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    flt.cali("cali-OUTPUT", "-o cali+", tail="-j RETURN")
    flt.cali("cali-OUTPUT", "-p udp", comment="Allow IPv4 VXLAN packets to other allowed hosts",
             tail="-m multiport --dports 4789 -m addrtype --src-type LOCAL "
                  "-m set --match-set cali40all-vxlan-net dst -j ACCEPT")
    flt.cali("cali-OUTPUT", tail="-j MARK --set-xmark 0x0/0xf0000")
    flt.cali("cali-OUTPUT", tail="-m conntrack ! --ctstate DNAT -j cali-to-host-endpoint")
    flt.cali("cali-OUTPUT", comment="Host endpoint policy accepted packet.",
             tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    flt.cali("cali-wl-to-host", tail="-j cali-from-wl-dispatch")
    flt.cali("cali-wl-to-host", comment="Configured DefaultEndpointToHostAction", tail="-j ACCEPT")

    # per-namespace profiles (allow all, as Kubernetes does without NetworkPolicy)
    for pod_ns in sorted({p.ns for p in LOCAL_PODS}):
        for direction in ("pro", "pri"):
            chain = felix_name(f"cali-{direction}-", f"kns.{pod_ns}")
            flt.cali(chain, tail=f"-j MARK --set-xmark {M_ACCEPT}/{M_ACCEPT}")
            flt.cali(chain, tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")
            flt.chain(felix_name(f"cali-{direction}-", f"ksa.{pod_ns}.default"))
    # NetworkPolicy shop/allow-frontend: cart accepts TCP 8080 from app=frontend only
    flt.cali(CART_POLICY, "-p tcp", comment="Policy shop/knp.default.allow-frontend ingress",
             tail=f"-m set --match-set {FRONTEND_SET} src -m multiport --dports 8080 "
                  f"-j MARK --set-xmark {M_ACCEPT}/{M_ACCEPT}")
    flt.cali(CART_POLICY, tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")

    for pod in LOCAL_PODS:
        flt.cali("cali-from-wl-dispatch", f"-i {pod.iface}", tail=f"-g cali-fw-{pod.iface}")
    flt.cali("cali-from-wl-dispatch", comment="Unknown interface", tail="-j DROP")
    for pod in LOCAL_PODS:
        flt.cali("cali-to-wl-dispatch", f"-o {pod.iface}", tail=f"-g cali-tw-{pod.iface}")
    flt.cali("cali-to-wl-dispatch", comment="Unknown interface", tail="-j DROP")
    for pod in LOCAL_PODS:
        for way, direction in (("fw", "pro"), ("tw", "pri")):
            chain = f"cali-{way}-{pod.iface}"
            flt.cali(chain, tail="-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
            flt.cali(chain, tail="-m conntrack --ctstate INVALID -j DROP")
            flt.cali(chain, tail="-j MARK --set-xmark 0x0/0x30000")
            if way == "fw":
                flt.cali(chain, "-p udp", comment="Drop VXLAN encapped packets originating in workloads",
                         tail="-m multiport --dports 4789 -j DROP")
                flt.cali(chain, "-p ipencap", comment="Drop IPinIP encapped packets originating in workloads",
                         tail="-j DROP")
            if way == "tw" and pod.name.startswith("cart-"):
                flt.cali(chain, comment="Start of policies", tail=f"-j MARK --set-xmark 0x0/{M_PASS}")
                flt.cali(chain, tail=f"-m mark --mark 0x0/{M_PASS} -j {CART_POLICY}")
                flt.cali(chain, comment="Return if policy accepted",
                         tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")
                flt.cali(chain, comment="Drop if no policies passed packet",
                         tail=f"-m mark --mark 0x0/{M_PASS} -j DROP")
            flt.cali(chain, tail=f"-j {felix_name(f'cali-{direction}-', f'kns.{pod.ns}')}")
            flt.cali(chain, comment="Return if profile accepted",
                     tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")
            flt.cali(chain, tail=f"-j {felix_name(f'cali-{direction}-', f'ksa.{pod.ns}.default')}")
            flt.cali(chain, comment="Return if profile accepted",
                     tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j RETURN")
            flt.cali(chain, comment="Drop if no profiles matched", tail="-j DROP")


def kube_proxy_rules(mangle: Rules, nat: Rules, flt: Rules) -> None:
    """What kube-proxy (iptables mode, v1.30, --cluster-cidr=10.244.0.0/16) writes for SERVICES."""
    for t in (mangle, nat, flt):
        t.chain("KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY")
    mangle.chain("KUBE-IPTABLES-HINT")
    # ---- filter
    flt.add("INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
                     "-j KUBE-PROXY-FIREWALL")
    flt.add("INPUT", '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS')
    flt.add("INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
                     'portals" -j KUBE-EXTERNAL-SERVICES')
    flt.add("INPUT", "-j KUBE-FIREWALL")
    flt.add("FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
                       "-j KUBE-PROXY-FIREWALL")
    flt.add("FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD')
    flt.add("FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                       "-j KUBE-SERVICES")
    flt.add("FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
                       'portals" -j KUBE-EXTERNAL-SERVICES')
    flt.add("OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
                      "-j KUBE-PROXY-FIREWALL")
    flt.add("OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                      "-j KUBE-SERVICES")
    flt.add("OUTPUT", "-j KUBE-FIREWALL")
    flt.chain("KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL",
              "KUBE-SERVICES")
    flt.add("KUBE-FIREWALL", '! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet '
                             'connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP')
    flt.add("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    flt.add("KUBE-FORWARD", '-m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 '
                            "-j ACCEPT")
    flt.add("KUBE-FORWARD", '-m comment --comment "kubernetes forwarding conntrack rule" '
                            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    for s in SERVICES:
        if not s.endpoints:
            flt.add("KUBE-SERVICES", f'-d {s.cluster_ip}/32 -p {s.proto} -m comment --comment "{s.spn} has no '
                                     f'endpoints" -m {s.proto} --dport {s.port} -j REJECT --reject-with '
                                     "icmp-port-unreachable")
        if s.health_port:
            flt.add("KUBE-NODEPORTS", f'-p tcp -m comment --comment "{s.spn} health check node port" '
                                      f"-m tcp --dport {s.health_port} -j ACCEPT")

    # ---- nat
    nat.add("PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
    nat.add("OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
    nat.add("POSTROUTING", '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
    nat.chain("KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-SERVICES")
    nat.add("KUBE-MARK-MASQ", "-j MARK --or-mark 0x4000")
    nat.add("KUBE-POSTROUTING", "-m mark ! --mark 0x4000/0x4000 -j RETURN")
    nat.add("KUBE-POSTROUTING", "-j MARK --xor-mark 0x4000")
    nat.add("KUBE-POSTROUTING", '-m comment --comment "kubernetes service traffic requiring SNAT" '
                                "-j MASQUERADE --random-fully")
    for s in SERVICES:
        if not s.endpoints:
            continue
        h = kp_hash(s.spn + s.proto)
        svc, ext, svl = f"KUBE-SVC-{h}", f"KUBE-EXT-{h}", f"KUBE-SVL-{h}"
        nat.add("KUBE-SERVICES", f'-d {s.cluster_ip}/32 -p {s.proto} -m comment --comment "{s.spn} cluster IP" '
                                 f"-m {s.proto} --dport {s.port} -j {svc}")
        nat.add(svc, f'! -s {POD_CIDR} -d {s.cluster_ip}/32 -p {s.proto} -m comment --comment "{s.spn} cluster '
                     f'IP" -m {s.proto} --dport {s.port} -j KUBE-MARK-MASQ')

        def balance(chain: str, eps: list[tuple[str, int, bool]], s: Svc = s) -> None:
            for i, (ip, port, _) in enumerate(eps):
                sep = "KUBE-SEP-" + kp_hash(s.spn + s.proto + f"{ip}:{port}")
                left = len(eps) - i
                stat = f"-m statistic --mode random --probability {1 / left:.10f} " if left > 1 else ""
                nat.add(chain, f'-m comment --comment "{s.spn} -> {ip}:{port}" {stat}-j {sep}')

        eps = sorted(s.endpoints, key=lambda e: f"{e[0]}:{e[1]}")
        balance(svc, eps)
        if s.node_port:
            nat.add("KUBE-NODEPORTS", f'-p {s.proto} -m comment --comment "{s.spn}" -m {s.proto} '
                                      f"--dport {s.node_port} -j {ext}")
            if s.local:
                nat.add(ext, f'-s {POD_CIDR} -m comment --comment "pod traffic for {s.spn} external destinations" '
                             f"-j {svc}")
                nat.add(ext, f'-m comment --comment "masquerade LOCAL traffic for {s.spn} external destinations" '
                             "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
                nat.add(ext, f'-m comment --comment "route LOCAL traffic for {s.spn} external destinations" '
                             f"-m addrtype --src-type LOCAL -j {svc}")
                nat.add(ext, f"-j {svl}")
                balance(svl, [e for e in eps if e[2]])
            else:
                nat.add(ext, f'-m comment --comment "masquerade traffic for {s.spn} external destinations" '
                             "-j KUBE-MARK-MASQ")
                nat.add(ext, f"-j {svc}")
        for ip, port, _ in eps:
            sep = "KUBE-SEP-" + kp_hash(s.spn + s.proto + f"{ip}:{port}")
            nat.add(sep, f'-s {ip}/32 -m comment --comment "{s.spn}" -j KUBE-MARK-MASQ')
            nat.add(sep, f'-p {s.proto} -m comment --comment "{s.spn}" -m {s.proto} '
                         f"-j DNAT --to-destination {ip}:{port}")
    nat.add("KUBE-SERVICES", '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
                             'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')


def k8s_ruleset() -> str:
    raw, mangle, nat, flt = Rules("raw", RAW), Rules("mangle", MANGLE), Rules("nat", NAT), Rules("filter", FILTER)
    calico_rules(raw, mangle, nat, flt)
    kube_proxy_rules(mangle, nat, flt)
    # felix appends these two at the end of FORWARD (its "append" rules, after kube-proxy's jumps)
    flt.cali("FORWARD", comment="Policy explicitly accepted packet.",
             tail=f"-m mark --mark {M_ACCEPT}/{M_ACCEPT} -j ACCEPT")
    flt.cali("FORWARD", tail=f"-j MARK --set-xmark {M_ACCEPT}/{M_ACCEPT}")
    return "".join(t.text() for t in (raw, mangle, nat, flt))


def build_k8s(the_lab: Lab) -> Netns:
    """worker-1 of a three-node cluster: Calico VXLAN, kube-proxy iptables mode."""
    host, net = the_lab.ns("k8s-node"), the_lab.ns("k8s-net")
    host.sysctls([("net.ipv4.ip_forward", "1"),
                  *conf(["all", "default"], rp_filter="1", route_localnet="0", accept_local="0",
                        src_valid_mark="0"),
                  ("net.ipv4.conf.all.route_localnet", "1")])  # kube-proxy (localhost NodePorts)
    the_lab.veth(host, "eth0", net, "sw0", a_mac="52:54:00:6b:1c:0b", b_mac="52:54:00:00:00:01")
    # VXLAN device: a veth named like felix's device (no vxlan driver here), MTU 1450 as felix sets it
    the_lab.veth(host, "vxlan.calico", net, "vx0", a_mac="66:2d:7a:3f:91:c4", mtu=1450)
    host.ip_batch(["addr add 10.10.0.11/24 dev eth0", "link set eth0 up",
                   f"addr add {VXLAN_IP}/32 dev vxlan.calico", "link set vxlan.calico up"])
    net.ip_batch(["link set sw0 up", "link set vx0 up", "addr add 10.10.0.1/24 dev sw0"])
    routes = ["route add default via 10.10.0.1 dev eth0 proto dhcp src 10.10.0.11 metric 100",
              "route add blackhole 10.244.36.128/26 proto 80"]
    routes += [f"route add {block} via {gw} dev vxlan.calico proto 80 onlink" for block, gw in REMOTE_BLOCKS]
    for i, pod in enumerate(LOCAL_PODS):
        pod_ns = the_lab.ns(f"k8s-pod{i}")
        the_lab.veth(host, pod.iface, pod_ns, "eth0", a_mac="ee:ee:ee:ee:ee:ee",
                     b_mac=f"5a:2c:{i:02x}:7e:10:{i + 0x30:02x}")
        pod_ns.ip_batch([f"addr add {pod.ip}/32 dev eth0", "link set eth0 up",
                         "route add 169.254.1.1 dev eth0 scope link", "route add default via 169.254.1.1 dev eth0"])
        host.ip(f"link set {pod.iface} up")
        # felix's configureInterface(): strict rp_filter, route_localnet, proxy ARP, forwarding
        host.sysctls([*conf([pod.iface], rp_filter="1", route_localnet="1", proxy_arp="1", forwarding="1"),
                      (f"net.ipv4.neigh.{pod.iface}.proxy_delay", "0")])
        routes.append(f"route add {pod.ip} dev {pod.iface} scope link")
    host.ip_batch(routes)
    load(host, k8s_ruleset(), k8s_ipsets())
    return host


# ====================================================================== Docker + ufw
def ufw_rules(flt: Rules, user_input: list[str]) -> None:
    """ufw 0.36 (Ubuntu 24.04) with logging low: before/after/user chains and the skeleton."""
    for hook in ("INPUT", "FORWARD", "OUTPUT"):
        h = hook.lower()
        for part in ("before-logging", "before", "after", "after-logging", "reject", "track"):
            flt.add(hook, f"-j ufw-{part}-{h}")
    flt.chain(*[f"ufw-{p}-{h}" for p in ("after", "after-logging", "before", "before-logging", "reject", "track",
                                         "user", "user-logging", "skip-to-policy")
                for h in ("forward", "input", "output")],
              "ufw-logging-allow", "ufw-logging-deny", "ufw-not-local", "ufw-user-limit", "ufw-user-limit-accept")
    for port, proto in (("137", "udp"), ("138", "udp"), ("139", "tcp"), ("445", "tcp"), ("67", "udp"),
                        ("68", "udp")):
        flt.add("ufw-after-input", f"-p {proto} -m {proto} --dport {port} -j ufw-skip-to-policy-input")
    flt.add("ufw-after-input", "-m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input")
    for h in ("forward", "input"):
        flt.add(f"ufw-after-logging-{h}", '-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix '
                                          '"[UFW BLOCK] "')
    flt.add("ufw-before-forward", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    for t in ("3", "11", "12", "8"):
        flt.add("ufw-before-forward", f"-p icmp -m icmp --icmp-type {t} -j ACCEPT")
    flt.add("ufw-before-forward", "-j ufw-user-forward")
    flt.add("ufw-before-input", "-i lo -j ACCEPT")
    flt.add("ufw-before-input", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    flt.add("ufw-before-input", "-m conntrack --ctstate INVALID -j ufw-logging-deny")
    flt.add("ufw-before-input", "-m conntrack --ctstate INVALID -j DROP")
    for t in ("3", "11", "12", "8"):
        flt.add("ufw-before-input", f"-p icmp -m icmp --icmp-type {t} -j ACCEPT")
    flt.add("ufw-before-input", "-p udp -m udp --sport 67 --dport 68 -j ACCEPT")
    flt.add("ufw-before-input", "-j ufw-not-local")
    flt.add("ufw-before-input", "-d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT")
    flt.add("ufw-before-input", "-d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT")
    flt.add("ufw-before-input", "-j ufw-user-input")
    flt.add("ufw-before-output", "-o lo -j ACCEPT")
    flt.add("ufw-before-output", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    flt.add("ufw-before-output", "-j ufw-user-output")
    flt.add("ufw-logging-allow", '-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW ALLOW] "')
    flt.add("ufw-logging-deny", "-m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN")
    flt.add("ufw-logging-deny", '-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "')
    for t in ("LOCAL", "MULTICAST", "BROADCAST"):
        flt.add("ufw-not-local", f"-m addrtype --dst-type {t} -j RETURN")
    flt.add("ufw-not-local", "-m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny")
    flt.add("ufw-not-local", "-j DROP")
    flt.add("ufw-skip-to-policy-forward", "-j DROP")
    flt.add("ufw-skip-to-policy-input", "-j DROP")
    flt.add("ufw-skip-to-policy-output", "-j ACCEPT")
    flt.add("ufw-track-output", "-p tcp -m conntrack --ctstate NEW -j ACCEPT")
    flt.add("ufw-track-output", "-p udp -m conntrack --ctstate NEW -j ACCEPT")
    for rule in user_input:
        flt.add("ufw-user-input", rule)
    flt.add("ufw-user-limit", '-m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "')
    flt.add("ufw-user-limit", "-j REJECT --reject-with icmp-port-unreachable")
    flt.add("ufw-user-limit-accept", "-j ACCEPT")


@dataclass(frozen=True)
class Container:
    name: str
    ip: str
    mac: str
    veth: str
    published: tuple[tuple[int, int], ...]  # (host port, container port), tcp


CONTAINERS = [Container("db", "172.17.0.2", "02:42:ac:11:00:02", "veth5f3a1c2", ((5432, 5432),)),
              Container("web", "172.17.0.3", "02:42:ac:11:00:03", "vethb81e9d4", ((8080, 80),))]
DOCKER_USER_FIX = [
    "-s 198.51.100.10/32 -i eth0 -p tcp -m conntrack --ctorigdstport 5432 --ctdir ORIGINAL -j RETURN",
    "-i eth0 -p tcp -m conntrack --ctorigdstport 5432 --ctdir ORIGINAL -j DROP",
]


def docker_ruleset(fixed: bool) -> str:
    """dockerd 28 (iptables backend, docker0 only, userland-proxy on) beside ufw."""
    raw, nat, flt = Rules("raw", RAW), Rules("nat", NAT), Rules("filter", FILTER)
    flt.builtins = [("INPUT", "DROP"), ("FORWARD", "DROP"), ("OUTPUT", "ACCEPT")]
    for c in CONTAINERS:  # direct routing to a published container from outside is dropped (28.0)
        raw.add("PREROUTING", f"-d {c.ip}/32 ! -i docker0 -j DROP")
    flt.add("FORWARD", "-j DOCKER-USER")
    flt.add("FORWARD", "-j DOCKER-FORWARD")
    flt.chain("DOCKER", "DOCKER-BRIDGE", "DOCKER-CT", "DOCKER-FORWARD", "DOCKER-INTERNAL", "DOCKER-USER")
    ufw_rules(flt, ["-p tcp -m tcp --dport 22 -j ACCEPT", "-p tcp -m tcp --dport 8080 -j ACCEPT",
                    "-p tcp -m tcp --dport 5432 -j DROP", "-p tcp -m tcp --dport 9100 -j DROP"])
    for c in CONTAINERS:
        for _, cport in c.published:
            flt.add("DOCKER", f"-d {c.ip}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport {cport} -j ACCEPT")
    flt.add("DOCKER", "! -i docker0 -o docker0 -j DROP")
    flt.add("DOCKER-BRIDGE", "-o docker0 -j DOCKER")
    flt.add("DOCKER-CT", "-o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    flt.add("DOCKER-FORWARD", "-j DOCKER-CT")
    flt.add("DOCKER-FORWARD", "-j DOCKER-INTERNAL")
    flt.add("DOCKER-FORWARD", "-j DOCKER-BRIDGE")
    flt.add("DOCKER-FORWARD", "-i docker0 -j ACCEPT")
    if fixed:
        for rule in DOCKER_USER_FIX:
            flt.add("DOCKER-USER", rule)
    nat.add("PREROUTING", "-m addrtype --dst-type LOCAL -j DOCKER")
    nat.add("OUTPUT", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
    nat.add("POSTROUTING", "-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE")
    for c in CONTAINERS:
        for hport, cport in c.published:
            nat.add("DOCKER", f"! -i docker0 -p tcp -m tcp --dport {hport} -j DNAT --to-destination {c.ip}:{cport}")
    return raw.text() + flt.text() + nat.text()


def build_docker(the_lab: Lab, fixed: bool) -> Netns:
    tag = "dkf" if fixed else "dk"
    host, net = the_lab.ns(f"{tag}-host"), the_lab.ns(f"{tag}-net")
    # Ubuntu 24.04: loose reverse-path filtering (10-network-security.conf); dockerd turns forwarding on
    host.sysctls([("net.ipv4.ip_forward", "1"),
                  *conf(["all", "default"], rp_filter="2", route_localnet="0", accept_local="0",
                        src_valid_mark="0")])
    the_lab.veth(host, "eth0", net, "sw0", a_mac="96:00:03:8a:4e:21", b_mac="96:00:00:00:00:01")
    host.ip_batch(["link add docker0 address 02:42:5c:d1:7a:09 type bridge", "addr add 203.0.113.20/24 dev eth0",
                   "link set eth0 up", "addr add 172.17.0.1/16 dev docker0", "link set docker0 up",
                   "route add default via 203.0.113.1 dev eth0 proto static"])
    net.ip_batch(["link set sw0 up", "addr add 203.0.113.1/24 dev sw0"])
    for i, c in enumerate(CONTAINERS):
        ctr = the_lab.ns(f"{tag}-ctr{i}")
        the_lab.veth(host, c.veth, ctr, "eth0", a_mac=f"1a:7c:e3:0{i}:5b:2{i}", b_mac=c.mac)
        host.ip_batch([f"link set {c.veth} master docker0", f"link set {c.veth} up"])
        ctr.ip_batch([f"addr add {c.ip}/16 dev eth0", "link set eth0 up", "route add default via 172.17.0.1"])
    load(host, docker_ruleset(fixed))
    return host


# ====================================================================== firewalld
FWD_ZONES = {  # zone -> (interfaces, sources, target, allowed (proto, port), rich/deny rules)
    "trusted": ([], ["192.0.2.0/28"], "ACCEPT", [], []),
    "internal": (["eth1"], [], "default", [("tcp", 22), ("udp", 5353), ("tcp", 5432)], []),
    "public": (["eth0"], [], "default", [("tcp", 22), ("tcp", 80), ("tcp", 443)],
               ["-s 198.51.100.23/32 -j REJECT --reject-with icmp-port-unreachable"]),
}
FWD_DEFAULT_ZONE = "public"
ZONE_PARTS = ("pre", "log", "deny", "allow", "post")


def firewalld_ruleset() -> str:
    """firewalld 1.3 with FirewallBackend=iptables (RHEL 9 style), LogDenied=off."""
    raw, mangle, nat = Rules("raw", RAW), Rules("mangle", MANGLE), Rules("nat", NAT)
    flt, sec = Rules("filter", FILTER), Rules("security", SECURITY)

    def zone_chain(t: Rules, prefix: str, zone: str) -> str:
        chain = f"{prefix}_{zone}"
        for part in ZONE_PARTS:
            t.add(chain, f"-j {chain}_{part}")
            t.chain(f"{chain}_{part}")
        return chain

    def dispatch(t: Rules, dispatcher: str, prefix: str, opt: str) -> None:
        """*_ZONES: source bindings first, then interfaces, then the default zone (goto)."""
        for zone, (_ifaces, sources, *_rest) in FWD_ZONES.items():
            for src in sources:
                t.add(dispatcher, f"{'-s' if opt == '-i' else '-d'} {src} -g {prefix}_{zone}")
        for zone, (ifaces, *_rest) in FWD_ZONES.items():
            for ifname in ifaces:
                t.add(dispatcher, f"{opt} {ifname} -g {prefix}_{zone}")
        t.add(dispatcher, f"-g {prefix}_{FWD_DEFAULT_ZONE}")
        for zone in FWD_ZONES:
            zone_chain(t, prefix, zone)

    # per table: hook -> the dispatch chains after <hook>_direct (firewalld's ipXtables.py build_default_rules)
    frames: dict[Rules, dict[str, tuple[str, ...]]] = {
        raw: {"PREROUTING": ("POLICIES_pre", "ZONES", "POLICIES_post"), "OUTPUT": ()},
        mangle: {"PREROUTING": ("POLICIES_pre", "ZONES", "POLICIES_post"), "INPUT": (), "FORWARD": (),
                 "OUTPUT": (), "POSTROUTING": ()},
        nat: {"PREROUTING": ("POLICIES_pre", "ZONES", "POLICIES_post"), "OUTPUT": ("POLICIES_pre", "POLICIES_post"),
              "POSTROUTING": ("POLICIES_pre", "ZONES", "POLICIES_post")},
        sec: {"INPUT": (), "FORWARD": (), "OUTPUT": ()},
    }
    for t, hooks in frames.items():
        for hook, suffixes in hooks.items():
            for chain in (f"{hook}_direct", *[f"{hook}_{s}" for s in suffixes]):
                t.add(hook, f"-j {chain}")
                t.chain(chain)
        if "ZONES" in hooks.get("PREROUTING", ()):
            dispatch(t, "PREROUTING_ZONES", "PRE", "-i")
        if "ZONES" in hooks.get("POSTROUTING", ()):
            dispatch(t, "POSTROUTING_ZONES", "POST", "-o")
    # filter: the fixed frame around the zones
    flt.add("INPUT", "-m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT")
    flt.add("INPUT", "-i lo -j ACCEPT")
    flt.add("INPUT", "-j INPUT_direct")
    for suffix in ("POLICIES_pre", "ZONES", "POLICIES_post"):
        flt.add("INPUT", f"-j INPUT_{suffix}")
    flt.add("INPUT", "-m conntrack --ctstate INVALID -j DROP")
    flt.add("INPUT", "-j REJECT --reject-with icmp-host-prohibited")
    flt.add("FORWARD", "-m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT")
    flt.add("FORWARD", "-i lo -j ACCEPT")
    flt.add("FORWARD", "-j FORWARD_direct")
    for suffix in ("POLICIES_pre", "IN_ZONES", "OUT_ZONES", "POLICIES_post"):
        flt.add("FORWARD", f"-j FORWARD_{suffix}")
    flt.add("FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    flt.add("FORWARD", "-j REJECT --reject-with icmp-host-prohibited")
    flt.add("OUTPUT", "-o lo -j ACCEPT")
    flt.add("OUTPUT", "-j OUTPUT_direct")
    flt.add("OUTPUT", "-j OUTPUT_POLICIES_pre")
    flt.add("OUTPUT", "-j OUTPUT_POLICIES_post")
    flt.chain("FORWARD_IN_ZONES", "FORWARD_OUT_ZONES", "FORWARD_POLICIES_post", "FORWARD_POLICIES_pre",
              "FORWARD_direct", "INPUT_POLICIES_post", "INPUT_POLICIES_pre", "INPUT_ZONES", "INPUT_direct",
              "OUTPUT_POLICIES_post", "OUTPUT_POLICIES_pre", "OUTPUT_direct")
    dispatch(flt, "INPUT_ZONES", "IN", "-i")
    dispatch(flt, "FORWARD_IN_ZONES", "FWDI", "-i")
    dispatch(flt, "FORWARD_OUT_ZONES", "FWDO", "-o")
    for zone, (_, _, target, allowed, deny) in FWD_ZONES.items():
        for prefix in ("IN", "FWDI"):
            chain = f"{prefix}_{zone}"
            if target == "ACCEPT":
                flt.add(chain, "-j ACCEPT")
            else:
                flt.add(chain, "-p icmp -j ACCEPT")
        for rule in deny:
            flt.add(f"IN_{zone}_deny", rule)
        for proto, port in allowed:
            dst = "-d 224.0.0.251/32 " if port == 5353 else ""
            flt.add(f"IN_{zone}_allow", f"{dst}-p {proto} -m {proto} --dport {port} -m conntrack "
                                        "--ctstate NEW,UNTRACKED -j ACCEPT")
    # forward-port=port=8443:proto=tcp:toport=443 in zone public
    nat.add("PRE_public_allow", "-p tcp -m tcp --dport 8443 -j DNAT --to-destination :443")
    return "".join(t.text() for t in (raw, mangle, nat, flt, sec))


def build_firewalld(the_lab: Lab) -> Netns:
    host, net = the_lab.ns("fwd-host"), the_lab.ns("fwd-net")
    # RHEL 9: rp_filter 1 per interface (50-redhat.conf: default and '*', not 'all'); not a router
    host.sysctls([("net.ipv4.ip_forward", "0"),
                  *conf(["all"], rp_filter="0", route_localnet="0", accept_local="0", src_valid_mark="0"),
                  *conf(["default"], rp_filter="1", route_localnet="0", accept_local="0", src_valid_mark="0")])
    the_lab.veth(host, "eth0", net, "pub0", a_mac="52:54:00:3e:81:0a", b_mac="52:54:00:00:00:fe")
    the_lab.veth(host, "eth1", net, "int0", a_mac="52:54:00:3e:81:0b", b_mac="52:54:00:00:01:fe")
    host.ip_batch(["addr add 203.0.113.30/24 dev eth0", "addr add 10.20.0.10/16 dev eth1", "link set eth0 up",
                   "link set eth1 up", "route add default via 203.0.113.1 dev eth0 proto static metric 100"])
    net.ip_batch(["link set pub0 up", "link set int0 up"])
    load(host, firewalld_ruleset())
    return host


# ====================================================================== dual-uplink router
def router_ruleset() -> str:
    mangle, nat, flt = Rules("mangle", MANGLE), Rules("nat", NAT), Rules("filter", FILTER)
    flt.builtins = [("INPUT", "DROP"), ("FORWARD", "DROP"), ("OUTPUT", "ACCEPT")]
    # connections remember the uplink they belong to (low byte of the mark), replies follow it
    mangle.add("PREROUTING", "-m conntrack --ctstate RELATED,ESTABLISHED "
                             "-j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff")
    mangle.add("PREROUTING", "-m conntrack --ctstate NEW -j uplink-select")
    mangle.add("OUTPUT", "-m conntrack --ctstate RELATED,ESTABLISHED "
                         "-j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff")
    mangle.add("uplink-select", "-i wan1 -j MARK --set-xmark 0x1/0xff")
    mangle.add("uplink-select", "-i wan2 -j MARK --set-xmark 0x2/0xff")
    mangle.add("uplink-select", '-s 192.168.10.50/32 -i lan0 -m comment --comment "work laptop: always via ISP B" '
                                "-j MARK --set-xmark 0x2/0xff")
    mangle.add("uplink-select", '-i lan0 -p udp -m udp --dport 5060 -m comment --comment "SIP trunk via ISP B" '
                                "-j MARK --set-xmark 0x2/0xff")
    mangle.add("uplink-select", "-j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff")
    nat.add("PREROUTING", '-d 203.0.113.66/32 -i wan2 -p tcp -m tcp --dport 443 -m comment --comment "NAS via '
                          'ISP B" -j DNAT --to-destination 192.168.10.20:443')
    nat.add("POSTROUTING", "-o wan1 -j MASQUERADE")
    nat.add("POSTROUTING", "-o wan2 -j MASQUERADE")
    flt.add("INPUT", "-i lo -j ACCEPT")
    flt.add("INPUT", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    flt.add("INPUT", "-m conntrack --ctstate INVALID -j DROP")
    flt.add("INPUT", "-i lan0 -j ACCEPT")
    flt.add("INPUT", "-p icmp -m icmp --icmp-type 8 -j ACCEPT")
    flt.add("INPUT", '-p udp -m udp --dport 51820 -m comment --comment "WireGuard" -j ACCEPT')
    flt.add("FORWARD", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    flt.add("FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    flt.add("FORWARD", "-i lan0 -o wan+ -j ACCEPT")
    flt.add("FORWARD", "-i wan+ -o lan0 -m conntrack --ctstate DNAT -j ACCEPT")
    return mangle.text() + nat.text() + flt.text()


def build_router(the_lab: Lab) -> Netns:
    host, net = the_lab.ns("rtr-host"), the_lab.ns("rtr-net")
    host.sysctls([("net.ipv4.ip_forward", "1"),
                  *conf(["all"], rp_filter="0", route_localnet="0", accept_local="0", src_valid_mark="1"),
                  *conf(["default"], rp_filter="1", route_localnet="0", accept_local="0", src_valid_mark="0")])
    for name, peer, mac in (("wan1", "ispa", "00:0d:b9:5a:10:01"), ("wan2", "ispb", "00:0d:b9:5a:10:02"),
                            ("lan0", "lan", "00:0d:b9:5a:10:03")):
        the_lab.veth(host, name, net, peer, a_mac=mac)
        net.ip(f"link set {peer} up")
    host.ip_batch([
        "addr add 198.51.100.2/30 dev wan1", "addr add 203.0.113.66/29 dev wan2",
        "addr add 192.168.10.1/24 dev lan0",
        "link set wan1 up", "link set wan2 up", "link set lan0 up",
        # main: ISP A preferred, ISP B as failover
        "route add default via 198.51.100.1 dev wan1 proto static metric 10",
        "route add default via 203.0.113.65 dev wan2 proto static metric 20",
        # one table per uplink
        "route add default via 198.51.100.1 dev wan1 proto static table 100",
        "route add default via 203.0.113.65 dev wan2 proto static table 200",
        # connected routes first (no default), then by mark, then by source address
        "rule add pref 90 lookup main suppress_prefixlength 0",
        "rule add pref 100 fwmark 0x1/0xff lookup 100",
        "rule add pref 101 fwmark 0x2/0xff lookup 200",
        "rule add pref 110 from 198.51.100.2 lookup 100",
        "rule add pref 111 from 203.0.113.66 lookup 200",
    ])
    load(host, router_ruleset())
    return host


# ====================================================================== the examples
BUILDERS: dict[str, Callable[[Lab], Netns]] = {
    "k8s-calico-node": build_k8s,
    "docker-ufw": lambda the_lab: build_docker(the_lab, fixed=False),
    "docker-ufw-fixed": lambda the_lab: build_docker(the_lab, fixed=True),
    "firewalld-server": build_firewalld,
    "dual-uplink-router": build_router,
}


def build(names: list[str]) -> None:
    if os.geteuid() != 0:
        sys.exit("build needs root (network namespaces, iptables-legacy-restore)")
    for name in names:
        with lab() as the_lab:
            host = BUILDERS[name](the_lab)
            dump(host, EXAMPLES / name)
        print(f"examples/{name}: written")


# ====================================================================== README.md and docs/examples.md
@dataclass(frozen=True)
class Question:
    title: str
    args: str  # pktpath arguments after the snapshot
    meaning: str
    command: str = "trace"
    more: tuple[str, ...] = ()  # further commands that the same explanation covers

    @property
    def all_args(self) -> tuple[str, ...]:
        return (self.args, *self.more)


@dataclass(frozen=True)
class Example:
    name: str
    title: str
    story: str
    questions: list[Question] = field(default_factory=list)
    note: str = ""  # docs/examples.md only
    ours: bool = True  # README.md written by this script


def run_pktpath(example: str, q: Question, args: str) -> str:
    cmd = [sys.executable, "-m", "pktpath", q.command, f"examples/{example}", *shlex.split(args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{shlex.join(cmd)}: {proc.stderr}")
    return proc.stdout.strip("\n")


def shell(example: str, q: Question, args: str) -> str:
    return f"pktpath {q.command} examples/{example} {args}"


def readme(ex: Example) -> str:
    out = [f"# Example: {ex.title}", "", ex.story.strip(), "", "## Questions to ask it", ""]
    for i, q in enumerate(ex.questions, 1):
        commands = [f"   {shell(ex.name, q, a)}" for a in q.all_args]
        out += [f"{i}. **{q.title}**", "", "   ```sh", *commands, "   ```", "",
                "   " + q.meaning.strip().replace("\n", "\n   "), ""]
    out += ["The traces with their output: [docs/examples.md](../../docs/examples.md#"
            f"{ex.name}). Every one is a golden test (`tests/unit/test_examples.py`) and is replayed "
            "through the real kernel (`tests/kernel/test_examples_kernel.py`).", "",
            "Regenerate the snapshot with `sudo python3 tools/make_examples.py build " + ex.name + "`.", ""]
    return "\n".join(out)


def docs_page(examples: list[Example]) -> str:
    out = ["# Examples", "",
           "Each directory under `examples/` is a snapshot of a realistic host, built in network namespaces",
           "by `tools/make_examples.py` (the ruleset written in the shape the real software writes it,",
           "loaded with `iptables-legacy-restore`) and dumped with the standard commands. Below, every",
           "documented question with its `pktpath` output, exactly as printed. The same questions are",
           "golden tests (`tests/unit/test_examples.py`) and are replayed through the real kernel",
           "(`tests/kernel/test_examples_kernel.py`); pktpath and the kernel agree on all of them unless",
           "a question says otherwise.", ""]
    out += [f"- [{ex.title}](#{ex.name})" for ex in examples]
    for ex in examples:
        out += ["", f'<a id="{ex.name}"></a>', "", f"## {ex.title}", "",
                f"Snapshot: [`examples/{ex.name}`](../examples/{ex.name}/README.md).", ""]
        if ex.note:
            out += [ex.note.strip(), ""]
        for q in ex.questions:
            out += [f"### {q.title}", ""]
            for a in q.all_args:
                out += ["```sh", shell(ex.name, q, a), "```", "", "```", run_pktpath(ex.name, q, a), "```", ""]
            out += [q.meaning.strip(), ""]
    return "\n".join(out)


def write_docs() -> None:
    for ex in EXAMPLE_TEXT:
        if ex.ours:
            (EXAMPLES / ex.name / "README.md").write_text(readme(ex))
    (ROOT / "docs" / "examples.md").write_text(docs_page(EXAMPLE_TEXT))
    print("README.md per example and docs/examples.md written")


# ---------------------------------------------------------------------- the stories and questions
K8S = "k8s-calico-node"
FRONTEND_IF, REDIS_IF = LOCAL_PODS[0].iface, LOCAL_PODS[2].iface

EXAMPLE_TEXT: list[Example] = [
    Example(K8S, "A Kubernetes node: kube-proxy (iptables mode) and Calico VXLAN", f"""
`worker-1` is one of three workers of a small production cluster that runs a web shop
(Kubernetes 1.30, Ubuntu 22.04). kube-proxy runs in iptables mode (`--cluster-cidr
10.244.0.0/16`); Calico 3.28 provides the pod network in VXLAN mode (IP pool 10.244.0.0/16,
`natOutgoing: true`, one /26 block per node). The ruleset is what those two write: Calico's
`cali-*` chains in raw, mangle, nat and filter (anti-spoofing with `rpfilter`, the per-pod
`cali-fw-*` / `cali-tw-*` chains with namespace profiles and one NetworkPolicy,
`natOutgoing` with ipsets, and the `vxlan.calico` MASQUERADE rule with
`addrtype ! --src-type LOCAL --limit-iface-out` + `--src-type LOCAL`), and kube-proxy's
`KUBE-*` chains (ClusterIP, NodePort with `externalTrafficPolicy: Cluster` and `Local`, a
Service without endpoints; chain names hashed the way kube-proxy hashes them; without the
`-m nfacct` counters newer releases add).

| interface | |
|---|---|
| `eth0` | 10.10.0.11/24, default via 10.10.0.1. The other nodes: 10.10.0.10 (control plane), 10.10.0.12 (worker-2), 10.10.0.13 (worker-3) |
| `vxlan.calico` | 10.244.36.128/32, MTU 1450, Calico's VXLAN device. **Here it is a veth of that name** (the kernel that built this snapshot has no vxlan driver); for the packet path only its name, address and routes matter. `10.244.171.0/26 via 10.244.171.0 onlink` (worker-2's block) and `10.244.222.64/26 via 10.244.222.64 onlink` (worker-3's) point into it |
| `cali*` | one veth per local pod, no address, a /32 route each; `blackhole 10.244.36.128/26` covers the rest of this node's block. felix's settings: proxy ARP, strict `rp_filter`, `route_localnet` |

| pod on this node | IP | host interface |
|---|---|---|
| shop/frontend-6c9f7d8b5-x2lkq | 10.244.36.130 | `{LOCAL_PODS[0].iface}` |
| shop/cart-5d8f9c7b6-qr7zt | 10.244.36.131 | `{LOCAL_PODS[1].iface}` |
| shop/redis-0 | 10.244.36.132 | `{LOCAL_PODS[2].iface}` |
| ingress-nginx/ingress-nginx-controller-7b9d5c-h4kls | 10.244.36.133 | `{LOCAL_PODS[3].iface}` |

| Service | ClusterIP | NodePort | endpoints |
|---|---|---|---|
| default/kubernetes | 10.96.0.1:443 | | 10.10.0.10:6443 |
| kube-system/kube-dns | 10.96.0.10:53 udp, tcp | | 10.244.171.2, 10.244.222.66 (other nodes) |
| shop/cart | 10.96.45.10:8080 | | 10.244.36.131 (here), 10.244.171.7 (worker-2) |
| shop/redis | 10.96.120.33:6379 | | 10.244.36.132 (here) |
| shop/frontend | 10.96.88.20:80 | 30080, policy Cluster | 10.244.36.130:8080 (here), 10.244.171.8:8080 |
| ingress-nginx/ingress-nginx-controller | 10.96.200.5:443 | 31443, policy **Local** (health check 32201) | 10.244.36.133 (here), 10.244.171.9 |
| ops/node-agent | 10.96.150.7:9100 | 30910, policy Cluster | **host network**: 10.10.0.11:9100 (this node), 10.10.0.12:9100 |
| shop/reviews | 10.96.77.40:80 | | none: kube-proxy rejects |

NetworkPolicy `shop/allow-frontend`: the cart pods accept TCP 8080 only from `app=frontend`
pods (Calico ipset `{FRONTEND_SET}`). Sysctls: `ip_forward=1`, strict `rp_filter=1` (Calico
refuses loose mode), `route_localnet=1` (kube-proxy). IPv6 is disabled on this host.
""", [  # noqa: E501 - markdown tables
        Question("A pod calls a ClusterIP Service",
                 f"--iif {FRONTEND_IF} --src 10.244.36.130 --dst 10.96.45.10 --proto tcp --dport 8080", """
kube-proxy's `KUBE-SVC-…` chain picks an endpoint at random (`-m statistic --mode random
--probability 0.5`), so pktpath follows both fates and gives each its probability: a DNAT to
the cart pod on worker-2, routed into `vxlan.calico`, or to the cart pod on this node, out of
its own `cali*` veth after the NetworkPolicy chain `cali-pi-…` accepted it (the frontend's
address is in the `app=frontend` ipset). Neither is masqueraded: the source is a pod, so the
`! -s 10.244.0.0/16 … -j KUBE-MARK-MASQ` rule does not match and `KUBE-POSTROUTING` returns at
once. The mark 0x10000 the packet leaves with is Calico's "policy accepted" bit."""),
        Question("Pod to pod across nodes",
                 f"--iif {FRONTEND_IF} --src 10.244.36.130 --dst 10.244.171.7 --proto tcp --dport 8080", """
No Service is involved: `KUBE-SERVICES` falls through (its last rule, the NodePort jump, wants a
local destination). The route for worker-2's block sends the packet into `vxlan.calico`;
Calico's egress chain for the frontend accepts it through the namespace profile (ingress
policy for the cart pod is worker-2's business). Nothing masquerades it: `cali-nat-outgoing`
skips destinations inside the IP pool, and the `vxlan.calico` rule wants a local source. The
pod's address reaches worker-2 unchanged."""),
        Question("An external client on a NodePort, with and without `externalTrafficPolicy: Local`",
                 "--iif eth0 --src 192.0.2.50 --dst 10.10.0.11 --proto tcp --dport 30080", """
`shop/frontend` on 30080 (policy Cluster): `KUBE-EXT-…` marks the packet for masquerade
(0x4000) before any endpoint is chosen, so both fates are SNATed by `KUBE-POSTROUTING`: to
10.244.36.128, the address of `vxlan.calico`, when the endpoint is on worker-2, and to
10.10.0.11 when it is the local pod (its `cali*` veth has no address, so MASQUERADE takes the
host's first global address). Either way the pod never sees the client's address.
`ingress-nginx-controller` on 31443 (policy Local): `KUBE-EXT-…` ends in `KUBE-SVL-…`, which
lists only the endpoint on this node. There is no random choice, no masquerade mark and no
SNAT: the controller sees 192.0.2.50, which is why ingress controllers use this policy.""",
                 more=("--iif eth0 --src 192.0.2.50 --dst 10.10.0.11 --proto tcp --dport 31443",)),
        Question("A pod reaches its own Service (hairpin)",
                 f"--iif {REDIS_IF} --src 10.244.36.132 --dst 10.96.120.33 --proto tcp --dport 6379", """
redis-0 is the only endpoint of `shop/redis`, so the DNAT sends the packet back where it came
from: in and out of the same `cali*` veth. `KUBE-SEP-…`'s first rule, `-s 10.244.36.132/32
-j KUBE-MARK-MASQ`, exists for exactly this case: `KUBE-POSTROUTING` masquerades the packet to
10.10.0.11, so redis answers the node rather than itself, and the reply goes back through
conntrack."""),
        Question("A NodePort whose backends run on the host network",
                 "--iif eth0 --src 192.0.2.50 --dst 10.10.0.11 --proto tcp --dport 30910", """
`ops/node-agent` is a hostNetwork DaemonSet, so its endpoints are node addresses. When
kube-proxy picks this node's own 10.10.0.11:9100, the DNAT makes the packet local: it is
delivered through INPUT and never reaches POSTROUTING, so the masquerade mark 0x4000 is never
acted on and the agent sees the real client, even though the policy is Cluster. When it picks
worker-2's 10.10.0.12:9100, the packet is forwarded back out of `eth0` and masqueraded to
10.10.0.11."""),
        Question("The node's own DNS query to kube-dns (Calico's `vxlan.calico` MASQUERADE rule)",
                 "--local --dst 10.96.0.10 --proto udp --dport 53", """
The kernel chooses the source before NAT: 10.96.0.10 is routed via `eth0`, so the source is
10.10.0.11. After the DNAT to a CoreDNS pod on another node, the packet is re-routed into
`vxlan.calico` still carrying 10.10.0.11, an address the other end cannot answer through the
tunnel. Calico's rule `-o vxlan.calico -m addrtype ! --src-type LOCAL --limit-iface-out -m
addrtype --src-type LOCAL -j MASQUERADE` matches exactly that case (the source is local to the
host but is not an address of `vxlan.calico`) and rewrites it to 10.244.36.128. It runs before
`KUBE-POSTROUTING`, so kube-proxy's 0x4000 mark (set because the source is outside the pod
CIDR) is still on the packet when it leaves.""", "trace"),
    ], note="""
**Source ports after `MASQUERADE --random-fully`.** kube-proxy and Calico masquerade with
`--random-fully`, and then the kernel always picks a random source port. pktpath currently
keeps the original port: in the outputs below, every masqueraded packet shows the client's
port (40000). Everything else (trace lines, addresses, marks, interfaces) matches the kernel.
`tests/kernel/test_examples_kernel.py` marks these cases as expected failures until that is fixed."""),

    Example("docker-ufw", 'A Docker host with ufw: the published port ufw "denies"', """
`vps-01` is a small VPS (Ubuntu 24.04) with one public address. It runs Docker 28 and ufw.
Two containers on the default bridge publish ports on all addresses: `db` (postgres,
172.17.0.2, `-p 5432:5432`) and `web` (nginx, 172.17.0.3, `-p 8080:80`). ufw was set up with
the usual commands:

    ufw default deny incoming
    ufw allow 22/tcp
    ufw allow 8080/tcp
    ufw deny 5432/tcp
    ufw deny 9100/tcp        # node_exporter, listening on the host itself

`ufw status` lists 5432 as DENY, and yet the database logs connection attempts from all over
the internet. The ruleset is what ufw 0.36 and dockerd 28 (iptables backend) write together:
ufw's `ufw-*` chains hooked into INPUT, FORWARD and OUTPUT; Docker's `DOCKER-USER` and
`DOCKER-FORWARD` jumps placed before them in FORWARD, with `DOCKER-CT`, `DOCKER-BRIDGE` and
`DOCKER` behind; the DNAT rules in nat `DOCKER`; and the raw-table rules that stop packets
routed straight to a container's address.

| interface | |
|---|---|
| `eth0` | 203.0.113.20/24, default via 203.0.113.1 |
| `docker0` | bridge, 172.17.0.1/16, with ports `veth5f3a1c2` (db) and `vethb81e9d4` (web) |

Sysctls: `ip_forward=1` (dockerd), loose `rp_filter=2` (Ubuntu's default). IPv6 is disabled
on this host. Only routed traffic is traced here; packets between two containers are bridged
inside `docker0`, which pktpath does not model yet. The same host after the fix:
[`docker-ufw-fixed`](../docker-ufw-fixed/README.md).
""", [
        Question("Postgres from the internet: does `ufw deny 5432/tcp` stop it?",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.20 --proto tcp --dport 5432", """
No. Docker's DNAT in nat PREROUTING (`-m addrtype --dst-type LOCAL -j DOCKER`) rewrites the
destination to 172.17.0.2 *before* the routing decision, so the packet is forwarded to
`docker0` instead of being delivered to the host. It crosses FORWARD, where `DOCKER-USER`
(empty) returns and `DOCKER-FORWARD` → `DOCKER-BRIDGE` → `DOCKER` accepts it. ufw's deny rule is
in `ufw-user-input`, which only INPUT reaches, and this packet never goes through INPUT."""),
        Question("SSH: where ufw's rules do apply",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.20 --proto tcp --dport 22", """
A packet for the host itself: nat `DOCKER` has no rule for port 22, routing delivers it
locally, and INPUT walks ufw's chains down to `ufw-user-input`, where `ufw allow 22/tcp`
accepts it."""),
        Question("node_exporter on the host: here `ufw deny` works",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.20 --proto tcp --dport 9100", """
The same path as SSH, but `ufw-user-input`'s `--dport 9100 -j DROP` drops the packet. ufw's
denies protect the host's own services; the ports Docker publishes bypass them."""),
    ]),

    Example("docker-ufw-fixed", "The Docker host with the fix in DOCKER-USER", """
The same `vps-01` as in [`docker-ufw`](../docker-ufw/README.md), after the fix that Docker's
documentation recommends: filter published ports in `DOCKER-USER`, the chain that FORWARD
jumps to first and that dockerd creates but never fills. The rules match on `--ctorigdstport`
(the port the client connected to, before the DNAT) rather than `--dport`, so they stay right
whatever port the container listens on, and on `--ctdir ORIGINAL` so that they leave reply
packets alone. Only the office (198.51.100.10) may reach postgres:

    iptables -I DOCKER-USER -i eth0 -p tcp -m conntrack --ctorigdstport 5432 --ctdir ORIGINAL -j DROP
    iptables -I DOCKER-USER -i eth0 -s 198.51.100.10 -p tcp -m conntrack --ctorigdstport 5432 --ctdir ORIGINAL -j RETURN

Everything else is unchanged: the same interfaces, containers, ufw rules and sysctls.
""", [
        Question("Postgres from the internet, after the fix",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.20 --proto tcp --dport 5432", """
The DNAT still happens, and the packet still goes to FORWARD, but `DOCKER-USER` now comes first
and its second rule drops it before any of Docker's chains can accept it."""),
        Question("Postgres from the office",
                 "--iif eth0 --src 198.51.100.10 --dst 203.0.113.20 --proto tcp --dport 5432", """
`DOCKER-USER`'s first rule RETURNs for the office address, and Docker's own chains accept the
packet as before."""),
        Question("The web container is not affected",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.20 --proto tcp --dport 8080", """
The connection's original destination port is 8080, so neither new rule matches; `DOCKER-USER`
falls through and `DOCKER` accepts the packet, now addressed to 172.17.0.3:80."""),
        Question("The containers' own connections to the internet",
                 "--iif docker0 --src 172.17.0.2 --dst 151.101.2.132 --proto tcp --dport 443", """
The new rules only look at packets that arrive on `eth0`. The database's outbound HTTPS leaves
through `DOCKER-FORWARD`'s `-i docker0 -j ACCEPT` and is masqueraded to 203.0.113.20 by
Docker's POSTROUTING rule."""),
    ]),

    Example("firewalld-server", "A firewalld server with zones", """
`db01` is a RHEL 9 server on two networks, running firewalld 1.3 with
`FirewallBackend=iptables`. It serves HTTPS to the internet and PostgreSQL to the
application servers. The ruleset has that backend's layout: in every table, `*_direct`,
`*_POLICIES_pre` / `*_POLICIES_post` and `*_ZONES` dispatch chains; per zone a chain family with
`_pre`, `_log`, `_deny`, `_allow` and `_post` parts; and INPUT's final
`REJECT --reject-with icmp-host-prohibited`.

| zone | bound to | allows |
|---|---|---|
| `public` (default) | `eth0`, 203.0.113.30/24, default via 203.0.113.1 | ssh, http, https; forward-port 8443 → 443; rich rule: reject 198.51.100.23 |
| `internal` | `eth1`, 10.20.0.10/16 (the application network) | ssh, mdns, 5432/tcp |
| `trusted` | source 192.0.2.0/28 (the admins' VPN exit) | everything (target ACCEPT) |

    firewall-cmd --permanent --zone=public --add-service=http --add-service=https
    firewall-cmd --permanent --zone=public --add-forward-port=port=8443:proto=tcp:toport=443
    firewall-cmd --permanent --zone=public --add-rich-rule='rule family=ipv4 source address=198.51.100.23 reject'
    firewall-cmd --permanent --zone=internal --change-interface=eth1 --add-port=5432/tcp
    firewall-cmd --permanent --zone=trusted --add-source=192.0.2.0/28

Sysctls: not a router (`ip_forward=0`), `rp_filter=1` on each interface (RHEL's default).
IPv6 is disabled on this host.
""", [  # noqa: E501 - markdown tables
        Question("HTTPS from the internet",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.30 --proto tcp --dport 443", """
Every table's PREROUTING dispatches on the zone of the incoming interface (`-i eth0 -g
PRE_public`). In filter, `INPUT_ZONES` sends the packet to `IN_public`, whose `_allow` part
accepts new connections to port 443."""),
        Question("PostgreSQL from the internet",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.30 --proto tcp --dport 5432", """
`IN_public` has no rule for 5432: each part returns, the zone's `-p icmp -j ACCEPT` does not
match, and the packet falls back to INPUT, whose last rule rejects it with ICMP
host-prohibited. That is what a zone with target `default` does."""),
        Question("PostgreSQL from an application server",
                 "--iif eth1 --src 10.20.1.15 --dst 10.20.0.10 --proto tcp --dport 5432", """
`eth1` belongs to `internal`, so `INPUT_ZONES` goes to `IN_internal`, whose `_allow` part
accepts 5432."""),
        Question("PostgreSQL from an admin on the VPN, over the public interface",
                 "--iif eth0 --src 192.0.2.5 --dst 203.0.113.30 --proto tcp --dport 5432", """
Source bindings come first in every `*_ZONES` chain: `-s 192.0.2.0/28 -g IN_trusted` wins over
`-i eth0 -g IN_public`, and the trusted zone accepts everything. (Its unconditional `-j ACCEPT`
shows as `IN_trusted:return:6`: the kernel logs an unconditional verdict rule of a user chain
as the chain's end.)"""),
        Question("SSH from the blocked address",
                 "--iif eth0 --src 198.51.100.23 --dst 203.0.113.30 --proto tcp --dport 22", """
A rich rule's reject lives in the zone's `_deny` part, which runs before `_allow`. SSH is
allowed in `public`, but not for this source: it is rejected with ICMP port-unreachable."""),
        Question("The forwarded port 8443",
                 "--iif eth0 --src 198.51.100.77 --dst 203.0.113.30 --proto tcp --dport 8443", """
A forward-port to a local port is a DNAT in the nat table's `PRE_public_allow`
(`--to-destination :443`: only the port changes). Filter INPUT's first rule accepts every
DNATed connection (`--ctstate RELATED,ESTABLISHED,DNAT`), so the zone chains never see it."""),
    ]),

    Example("dual-uplink-router", "A router with two uplinks and policy routing", """
`gw` is the Linux router of a small office with two internet connections: fibre from ISP A
(`wan1`, 198.51.100.2/30) and cable from ISP B (`wan2`, 203.0.113.66/29). The office LAN is
`lan0`, 192.168.10.0/24. ISP A is the default route. ISP B carries the work laptop
(192.168.10.50), whose traffic must come from a fixed address on a customer's allow-list;
the SIP trunk; the HTTPS port forward to the NAS (the NAS's DNS name points at ISP B's
address); and the WireGuard endpoint the router itself serves on ISP B's address.

    ip route add default via 198.51.100.1 dev wan1 metric 10      # main: ISP A ...
    ip route add default via 203.0.113.65 dev wan2 metric 20      # ... and ISP B as failover
    ip route add default via 198.51.100.1 dev wan1 table 100      # ISP A
    ip route add default via 203.0.113.65 dev wan2 table 200      # ISP B
    ip rule add pref 90 lookup main suppress_prefixlength 0       # connected routes, never main's default
    ip rule add pref 100 fwmark 0x1/0xff lookup 100
    ip rule add pref 101 fwmark 0x2/0xff lookup 200
    ip rule add pref 110 from 198.51.100.2 lookup 100             # the router's own traffic
    ip rule add pref 111 from 203.0.113.66 lookup 200

The mangle table gives each new connection the mark of its uplink: 0x1 or 0x2 by the interface
it arrived on, or from the `uplink-select` rules for LAN traffic. The mark is saved in the
connection (`CONNMARK --save-mark`) and restored on every later packet, so replies leave by the
uplink their connection belongs to. Both uplinks masquerade; filter drops everything that is
not allowed.

Sysctls: `ip_forward=1`; strict `rp_filter=1` on every interface, with
`net.ipv4.conf.all.src_valid_mark=1` so that the reverse-path check takes the mark into
account (without it, a connection arriving on `wan2` would fail the strict check, because the
main table's default route leaves through `wan1`). The routing tables show as numbers (100,
200) because `ip -j` prints a table without an `rt_tables` name as its number. IPv6 is disabled
on this host.
""", [
        Question("A LAN client browses the web",
                 "--iif lan0 --src 192.168.10.31 --dst 93.184.215.14 --proto tcp --dport 443", """
`uplink-select` gives it no mark. Rule 90 finds only main's default route, which
`suppress_prefixlength 0` ignores; the fwmark and source rules do not match; rule 32766 then uses
main again, where the default via ISP A (metric 10) wins. MASQUERADE on `wan1`."""),
        Question("The work laptop",
                 "--iif lan0 --src 192.168.10.50 --dst 93.184.215.14 --proto tcp --dport 443", """
`uplink-select` marks it 0x2, rule 101 sends it to table 200, and it leaves through `wan2`,
masqueraded to ISP B's 203.0.113.66: the address on the customer's allow-list."""),
        Question("Inbound on ISP B to the NAS, and the NAS's answer",
                 "--iif wan2 --src 192.0.2.77 --dst 203.0.113.66 --proto tcp --dport 443 --then reply:SYN,ACK", """
Packet 1 is marked 0x2 because it arrived on `wan2`, then DNATed to the NAS; rule 90 finds the
LAN route in main. The reverse-path check for 192.0.2.77 uses mark 0x2 (`src_valid_mark`),
so table 200 answers "via wan2" and the strict check passes. Packet 2, the NAS's SYN-ACK:
`CONNMARK --restore-mark` puts 0x2 back, rule 101 sends it to table 200, and it leaves through
`wan2` with the source 203.0.113.66 the client connected to. Without the restore it would take
main's default route to ISP A, and the client would get its answer from the wrong address.""",
                 "flow"),
        Question("The router's own WireGuard traffic from ISP B's address",
                 "--local --src 203.0.113.66 --dst 185.199.110.9 --proto udp --sport 51820 --dport 51820", """
The WireGuard socket is bound to 203.0.113.66, so rule 111 (`from 203.0.113.66 lookup 200`)
routes it through `wan2`. The MASQUERADE on `wan2` keeps the source as it is: it already is
`wan2`'s address."""),
        Question("A spoofed packet on ISP A claiming a LAN source",
                 "--iif wan1 --src 192.168.10.99 --dst 192.168.10.20 --proto tcp --dport 445", """
Strict reverse-path filtering: the route back to 192.168.10.99 is through `lan0`, not `wan1`,
so the kernel drops the packet in the routing decision, before FORWARD."""),
    ]),

    Example("home-router", "A home router", """
The project's first example (see its [README](../examples/home-router/README.md)).
""", [
        Question("Does the port forward work?",
                 "--iif eth0 --src 198.51.100.7 --dst 203.0.113.2 --proto tcp --dport 8080", """
nat PREROUTING DNATs port 8080 to the web server at 192.168.1.10:80, and filter FORWARD
accepts it with `--ctstate DNAT`."""),
        Question("SSH from the internet",
                 "--iif eth0 --src 198.51.100.7 --dst 203.0.113.2 --proto tcp --dport 22", """
INPUT sends WAN traffic to `wan-in`, which logs SSH attempts and then rejects TCP with a reset."""),
        Question("A LAN client browsing",
                 "--iif eth1 --src 192.168.1.50 --dst 93.184.216.34 --proto tcp --dport 443", """
Forwarded from the LAN to `eth0` and masqueraded behind 203.0.113.2."""),
    ], ours=False),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="rebuild the snapshots in fresh namespaces (root)")
    b.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BUILDERS)} (default: all)")
    sub.add_parser("docs", help="write each example's README.md and docs/examples.md")
    sub.add_parser("ruleset", help="print an example's ruleset as loaded").add_argument("name", choices=BUILDERS)
    a = ap.parse_args()
    if a.cmd == "build":
        unknown = [n for n in a.names if n not in BUILDERS]
        if unknown:
            ap.error(f"unknown example(s): {', '.join(unknown)}")
        build(a.names or list(BUILDERS))
    elif a.cmd == "docs":
        write_docs()
    else:
        print({"k8s-calico-node": k8s_ruleset, "docker-ufw": lambda: docker_ruleset(False),
               "docker-ufw-fixed": lambda: docker_ruleset(True), "firewalld-server": firewalld_ruleset,
               "dual-uplink-router": router_ruleset}[a.name](), end="")


if __name__ == "__main__":
    main()
