"""IPv4 routing against the real kernel.

* ``pktpath route --format json`` against ``ip -j route get`` asked in a namespace holding the
  same setup, compared as shared/kernel-cases/check/compare_routes.py compares
  (shared/spec/route-json.md): on random setups (routing_fuzz.generate, a property test) and
  on named scenarios, one per rule selector and action, route type and source-selection case;
* routing inside the packet path: ``pktpath trace``/``flow`` against packets sent through the
  sandbox (src/pktpath/sandbox): MASQUERADE's choice of source address, rp_filter strict and
  loose (the drop counted in the namespace's TcpExt IPReversePathFilter counter), a local
  packet re-routed after mangle OUTPUT sets its mark, DNAT followed by policy routing, and a
  multi-interface cloud host whose replies leave by the interface the connection came in on
  (CONNMARK + ``ip rule fwmark``).

Every setup is built in namespaces first (routing_fuzz), so a snapshot is what ``ip -j`` and
``sysctl -a`` really print.  The kernel tests need root; they skip without it, and fail instead
in CI (CI=true).  A scenario marked with a pktpath bug is a strict xfail: it must keep failing
until the bug is fixed (then drop the mark).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli
from pktpath.sandbox import KernelRun, Sandbox, compare

sys.path.insert(0, str(Path(__file__).parent))

import routing_fuzz as rf  # noqa: E402

RunTrace = Callable[..., KernelRun]
Args = list[str]

SEEDS = range(7000, 7040)
QUERIES_PER_SEED = 20
RP_FILTER_COUNTER = "TcpExt.IPReversePathFilter"  # /proc/net/netstat (nstat: TcpExtIPReversePathFilter)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def netns() -> None:
    """Network namespaces can be made here (root, iproute2); skip otherwise, fail in CI."""
    why = None
    if sys.platform != "linux":
        why = "not Linux"
    elif os.geteuid() != 0:
        why = "needs root (network namespaces)"
    elif shutil.which("ip") is None or shutil.which("sysctl") is None:
        why = "ip (iproute2) or sysctl (procps) not found"
    else:
        try:
            with rf.Lab():
                pass
        except (OSError, RuntimeError) as exc:
            why = f"cannot create a network namespace: {exc}"
    if why is not None:
        if in_ci():
            pytest.fail(f"routing kernel tests cannot run in CI: {why}")
        pytest.skip(f"routing kernel tests: {why}")


# ---------------------------------------------------------------------------------------------
# pktpath


def pktpath(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, f"pktpath {' '.join(args)}: exit {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def route_disagreements(run: rf.Run) -> list[str]:
    """One paragraph per query where ``pktpath route`` and the kernel disagree."""
    out = []
    for ans in run.answers:
        result = CliRunner().invoke(cli, ["route", str(run.snapshot), *ans.args, "--format", "json"])
        if result.exit_code != 0:
            got: object = f"exit {result.exit_code}: {result.output.strip()[-500:]} {result.exception!r}"
            diffs = [f"pktpath crashed or refused: {got}"]
        else:
            got = json.loads(result.stdout)
            diffs = rf.judge(ans, got)
        if diffs:
            out.append("\n".join([f"{ans.ip}   (pktpath route SNAPSHOT {' '.join(ans.args)})",
                                  *(f"    {d}" for d in diffs),
                                  f"    kernel:  {json.dumps(ans.expected)}",
                                  *([f"    kernel alternatives: {json.dumps(ans.alternatives)}"]
                                    if ans.alternatives else []),
                                  f"    pktpath: {json.dumps(got)}"]))
    return out


def report(run: rf.Run, diffs: Sequence[str]) -> str:
    return "\n\n".join([f"{len(diffs)} of {len(run.answers)} queries disagree", *diffs,
                        run.setup.script(), f"refused by the kernel: {run.refused}",
                        f"snapshot: {run.snapshot}"])


# ---------------------------------------------------------------------------------------------
# (a) property test: random setups


def test_generator_covers_every_feature() -> None:
    """The seeds of the property test use every rule selector and action, route type and
    route option, address kind and query option (checked without a kernel)."""
    setups = [rf.generate(seed, QUERIES_PER_SEED) for seed in SEEDS]
    text = "\n".join(" ".join(["rule"] + r.split()) for s in setups for r in s.rules)
    text += "\n" + "\n".join(" ".join(["route"] + r.split()) for s in setups for r in s.routes)
    words = set(text.split())
    for word in ("from", "to", "tos", "fwmark", "iif", "oif", "uidrange", "ipproto", "sport", "dport", "not",
                 "lookup", "goto", "nop", "blackhole", "unreachable", "prohibit", "suppress_prefixlength",
                 "suppress_ifgroup", "throw", "local", "broadcast", "multicast", "anycast", "nexthop", "weight",
                 "metric", "onlink", "src", "scope", "table"):
        assert word in words, f"no seed uses {word!r}"
    assert "pgone" in words, "no rule on a detached device"
    assert any(s.rules_del for s in setups), "no default rule deleted"
    addrs = [a for s in setups for i in s.ifaces for a in i.addrs]
    assert any("/32" in a for a in addrs) and any(" peer " in a for a in addrs)
    assert any(s.lo_addrs for s in setups)
    ifaces = [i for s in setups for i in s.ifaces]
    assert any(not i.carrier for i in ifaces) and any(not i.admin_up for i in ifaces) and any(i.group for i in ifaces)
    keys = {k.rsplit(".", 1)[-1] for s in setups for k, _ in s.sysctls}
    assert {"forwarding", "rp_filter", "accept_local", "ip_forward"} <= keys
    opts = {w for s in setups for q in s.queries for w in q[0::2]}
    assert opts == {"--dst", "--src", "--iif", "--oif", "--mark", "--uid", "--tos", "--ipproto", "--sport", "--dport"}
    assert rf.generate(SEEDS[0], 5).to_json() == rf.generate(SEEDS[0], 5).to_json()  # deterministic


# What the kernel refuses in random setups by design: a gateway no route (or rule) reaches, a route
# that exists already, a second address of a subnet with another scope, a src that is not local.
EXPECTED_REFUSALS = ("Nexthop has invalid gateway", "File exists", "Invalid scope value", "Address already assigned",
                     "Invalid prefsrc address")


@pytest.mark.kernel
@pytest.mark.parametrize("seed", SEEDS)
def test_route_get_agrees_on_random_setups(netns: None, tmp_path: Path, seed: int) -> None:
    setup = rf.generate(seed, QUERIES_PER_SEED)
    run = rf.run_setup(setup, tmp_path / "snap")
    odd = [line for line in run.refused if not any(why in line for why in EXPECTED_REFUSALS)]
    assert not odd, f"commands refused for an unexpected reason (generator bug?): {odd}"
    unasked = [a.ip for a in run.answers if str(a.expected.get("error", "")).startswith("iproute2")]
    assert not unasked, f"ip refused these queries (generator bug): {unasked}"
    diffs = route_disagreements(run)
    assert not diffs, report(run, diffs)


# ---------------------------------------------------------------------------------------------
# (b) named routing scenarios: pktpath route vs ip route get
#
# The host: eth0 10.0.0.1/24 + 192.168.50.1/24 + 10.0.0.9/24 (secondary); eth1 10.1.0.1/24;
# eth2 up without an address; eth3 10.3.0.1/24 without carrier; lo 10.255.0.1/32.
# main: default via 10.1.0.254 dev eth1; table 100: default via 10.0.0.254 dev eth0.
# So a query that a rule sends to table 100 leaves by eth0, one that falls through by eth1.

BASE_SYSCTLS = [("net.ipv4.ip_forward", "1")]
MAIN_DEFAULT = "default via 10.1.0.254 dev eth1"
TABLE_100 = "default via 10.0.0.254 dev eth0 table 100"


def host(*, routes: Sequence[str] = (), rules: Sequence[str] = (), rules_del: Sequence[str] = (),
         sysctls: Sequence[tuple[str, str]] = (), addrs: dict[str, list[str]] | None = None,
         lo: Sequence[str] = ("10.255.0.1/32",), down: Sequence[str] = (), groups: dict[str, int] | None = None,
         base_routes: Sequence[str] = (MAIN_DEFAULT, TABLE_100), queries: Sequence[Args] = (),
         name: str = "scenario", without: Sequence[str] = ()) -> rf.Setup:
    """The scenario host, with ``addrs`` replacing an interface's addresses, minus ``without``."""
    default_addrs = {"eth0": ["10.0.0.1/24", "192.168.50.1/24", "10.0.0.9/24"], "eth1": ["10.1.0.1/24"],
                     "eth2": [], "eth3": ["10.3.0.1/24"]}
    default_addrs.update(addrs or {})
    for name_ in without:
        del default_addrs[name_]
    ifaces = [rf.Iface(n, list(a), carrier=n != "eth3", admin_up=n not in down, group=(groups or {}).get(n, 0),
                       mac=f"02:00:00:00:{i:02x}:01") for i, (n, a) in enumerate(default_addrs.items())]
    return rf.Setup(name=name, ifaces=ifaces, routes=[*base_routes, *routes], rules=list(rules),
                    rules_del=list(rules_del), sysctls=[*BASE_SYSCTLS, *sysctls], lo_addrs=list(lo),
                    queries=[list(q) for q in queries])


def out(dst: str, *more: str) -> Args:
    """An output lookup (a local socket sends)."""
    return ["--dst", dst, *more]


def inp(iif: str, src: str, dst: str, *more: str) -> Args:
    """An input lookup (a packet arrives on iif)."""
    return ["--dst", dst, "--src", src, "--iif", iif, *more]


FAR = "198.51.100.7"


@dataclass(frozen=True)
class Scenario:
    id: str
    setup: rf.Setup
    bug: str | None = None  # a known pktpath bug: the scenario must fail (strict xfail)
    varied: bool = False  # the kernel answers differently to some of the queries (the selector matters)


def _sc(ident: str, bug: str | None = None, varied: bool = False, **kw: Any) -> Scenario:
    return Scenario(ident, host(name=ident, **kw), bug, varied)


def _sel(ident: str, **kw: Any) -> Scenario:
    return _sc(ident, varied=True, **kw)


SELECTOR_SCENARIOS = [
    _sel("selector-from-subnet", rules=["from 192.168.50.0/24 lookup 100 pref 100"],
        queries=[out(FAR, "--src", "192.168.50.1"), out(FAR, "--src", "10.1.0.1"), out(FAR),
                 inp("eth0", "192.168.50.7", FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sel("selector-from-secondary-address", rules=["from 10.0.0.9 lookup 100 pref 100"],
        queries=[out(FAR, "--src", "10.0.0.9"), out(FAR, "--src", "10.0.0.1"), out("10.0.0.9")]),
    _sel("selector-to", rules=["to 198.51.100.0/24 lookup 100 pref 100"],
        queries=[out(FAR), out("203.0.113.7"), inp("eth1", "10.1.0.7", FAR), inp("eth1", "10.1.0.7", "203.0.113.7")]),
    _sel("selector-tos", rules=["tos 0x10 lookup 100 pref 100"],
        queries=[out(FAR, "--tos", "0x10"), out(FAR, "--tos", "0x08"), out(FAR, "--tos", "0x11"), out(FAR),
                 inp("eth1", "10.1.0.7", FAR, "--tos", "0x10"), inp("eth1", "10.1.0.7", FAR)]),
    _sel("selector-fwmark", rules=["fwmark 0x7 lookup 100 pref 100"],
        queries=[out(FAR, "--mark", "7"), out(FAR, "--mark", "0x8"), out(FAR),
                 inp("eth1", "10.1.0.7", FAR, "--mark", "7"), inp("eth1", "10.1.0.7", FAR)]),
    _sel("selector-fwmark-mask", rules=["fwmark 0x100/0xff00 lookup 100 pref 100"],
        queries=[out(FAR, "--mark", "0x1ff"), out(FAR, "--mark", "0x200"), out(FAR, "--mark", "0x10100"),
                 out(FAR, "--mark", "0xff")]),
    _sel("selector-iif-device", rules=["iif eth1 lookup 100 pref 100"],
        queries=[inp("eth1", "10.1.0.7", FAR), inp("eth0", "10.0.0.7", FAR), out(FAR)]),
    _sel("selector-iif-lo", rules=["iif lo lookup 100 pref 100"],
        queries=[out(FAR), out(FAR, "--src", "10.1.0.1"), inp("eth1", "10.1.0.7", FAR)]),
    _sel("selector-oif", rules=["oif eth0 lookup 100 pref 100"],
        queries=[out(FAR, "--oif", "eth0"), out(FAR, "--oif", "eth1"), out(FAR), out(FAR, "--oif", "eth2")]),
    _sc("selector-iif-oif-detached", rules=["iif gone0 lookup 100 pref 100", "oif gone1 lookup 100 pref 110"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR), out(FAR, "--oif", "eth1")]),
    _sel("selector-uidrange", rules=["uidrange 1000-1999 lookup 100 pref 100"],
        queries=[out(FAR, "--uid", "1000"), out(FAR, "--uid", "1999"), out(FAR, "--uid", "2000"), out(FAR),
                 inp("eth1", "10.1.0.7", FAR, "--uid", "1000")]),
    _sel("selector-uidrange-covering-root", rules=["uidrange 0-0 lookup 100 pref 100"],
        queries=[out(FAR), out(FAR, "--uid", "1"), inp("eth1", "10.1.0.7", FAR)]),
    _sel("selector-ipproto", rules=["ipproto tcp lookup 100 pref 100"],
        queries=[out(FAR, "--ipproto", "tcp"), out(FAR, "--ipproto", "udp"), out(FAR),
                 inp("eth1", "10.1.0.7", FAR, "--ipproto", "tcp"), inp("eth1", "10.1.0.7", FAR, "--ipproto", "icmp")]),
    _sel("selector-sport", rules=["sport 1000-2000 lookup 100 pref 100"],
        queries=[out(FAR, "--ipproto", "udp", "--sport", "1500"), out(FAR, "--ipproto", "udp", "--sport", "53"),
                 out(FAR, "--sport", "2000"), inp("eth1", "10.1.0.7", FAR, "--ipproto", "udp", "--sport", "1000")]),
    _sel("selector-dport", rules=["dport 443 lookup 100 pref 100"],
        queries=[out(FAR, "--ipproto", "tcp", "--dport", "443"), out(FAR, "--ipproto", "tcp", "--dport", "80"),
                 out(FAR, "--ipproto", "icmp", "--dport", "443"),
                 inp("eth1", "10.1.0.7", FAR, "--ipproto", "tcp", "--dport", "443"),
                 inp("eth1", "10.1.0.7", FAR, "--ipproto", "icmp", "--dport", "443"),
                 inp("eth1", "10.1.0.7", FAR, "--ipproto", "tcp", "--dport", "444")]),
    _sel("selector-not", rules=["not from 10.1.0.0/24 lookup 100 pref 100"],
        queries=[out(FAR, "--src", "10.1.0.1"), out(FAR, "--src", "10.0.0.1"), out(FAR),
                 inp("eth1", "10.1.0.7", FAR), inp("eth0", "10.0.0.7", FAR)]),
    _sel("selector-all-at-once",
        rules=["from 10.0.0.0/24 to 198.51.100.0/24 tos 0x10 fwmark 0x1 ipproto udp dport 53 lookup 100 pref 100"],
        queries=[out(FAR, "--src", "10.0.0.1", "--tos", "0x10", "--mark", "1", "--ipproto", "udp", "--dport", "53"),
                 out(FAR, "--src", "10.0.0.1", "--tos", "0x10", "--mark", "1", "--ipproto", "udp", "--dport", "54"),
                 out(FAR, "--src", "10.0.0.1", "--tos", "0x10", "--mark", "1", "--ipproto", "tcp", "--dport", "53")]),
]

ACTION_SCENARIOS = [
    _sc("action-lookup-falls-through-a-table-without-route",
        routes=["192.0.2.0/24 via 10.0.0.254 dev eth0 table 200"], rules=["lookup 200 pref 100"],
        queries=[out("192.0.2.5"), out(FAR), inp("eth1", "10.1.0.7", "192.0.2.5")]),
    _sc("action-lookup-throw-route", routes=["throw 198.51.100.0/24 table 100"], rules=["lookup 100 pref 100"],
        queries=[out(FAR), out("203.0.113.7"), inp("eth1", "10.1.0.7", FAR)]),
    _sc("action-goto", routes=["prohibit default table 200"],
        rules=["from 10.0.0.9 goto 300 pref 100", "lookup 200 pref 200", "lookup 100 pref 300"],
        queries=[out(FAR, "--src", "10.0.0.9"), out(FAR, "--src", "10.0.0.1"), out(FAR)]),
    _sc("action-goto-unresolved", rules=["goto 250 pref 100", "lookup 100 pref 300"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("action-nop", rules=["nop pref 100", "lookup 100 pref 200"], queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("action-blackhole", rules=["to 198.51.100.0/24 blackhole pref 100"],
        queries=[out(FAR), out("203.0.113.7"), inp("eth1", "10.1.0.7", FAR), out(FAR, "--oif", "eth0")]),
    _sc("action-unreachable", rules=["to 198.51.100.0/24 unreachable pref 100"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR), out(FAR, "--oif", "eth0")]),
    _sc("action-prohibit", rules=["to 198.51.100.0/24 prohibit pref 100"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR), inp("eth1", "10.1.0.7", "10.0.0.1")]),
    _sc("action-suppress-prefixlength", routes=["10.9.0.0/16 via 10.1.0.254 dev eth1"],
        rules=["lookup main suppress_prefixlength 0 pref 100", "lookup 100 pref 200"],
        queries=[out(FAR), out("10.9.1.1"), out("10.0.0.7"), inp("eth1", "10.1.0.7", FAR)]),
    _sc("action-suppress-ifgroup", groups={"eth1": 5},
        rules=["lookup main suppress_ifgroup 5 pref 100", "lookup 100 pref 200"],
        queries=[out(FAR), out("10.0.0.7"), out("10.1.0.7")]),
    _sc("action-main-rule-replaced-by-one-for-local-traffic", rules=["iif lo lookup main pref 30000"],
        rules_del=["pref 32766 lookup main"], queries=[out(FAR), out("10.0.0.7"), inp("eth0", "10.0.0.7", FAR),
                                                       inp("eth0", "10.0.0.7", "10.1.0.7")]),
    _sc("action-local-rule-moved-after-a-fwmark-rule",
        rules=["fwmark 0x1 lookup 100 pref 500", "lookup local pref 1000"], rules_del=["pref 0 lookup local"],
        queries=[out("10.0.0.1", "--mark", "1"), out("10.0.0.1"), inp("eth1", "10.1.0.7", "10.0.0.1", "--mark", "1")]),
]

# The kernel uses a route's gateway only when the next hop has scope link: fib_check_nh_v4_gw()
# gives it the scope of the route its gateway resolves to when the route is added (the route's own
# table, then the rules; iif lo, oif the hop's device).  The three "route-gateway-*" scenarios pin it.

ROUTE_TYPE_SCENARIOS = [
    _sc("route-unicast-gateway-and-device",
        routes=["198.51.100.0/24 via 10.0.0.254 dev eth0", "203.0.113.0/24 dev eth1"],
        queries=[out(FAR), out("203.0.113.7"), inp("eth0", "10.0.0.7", "203.0.113.7")]),
    _sc("route-local", routes=["local 10.50.0.0/24 dev lo table local", "local 10.51.0.0/24 dev eth1"],
        queries=[out("10.50.0.7"), out("10.51.0.7"), inp("eth0", "10.0.0.7", "10.50.0.7"),
                 inp("eth0", "10.0.0.7", "10.51.0.7"), inp("eth0", "10.50.0.9", "10.0.0.1")]),
    _sc("route-broadcast", routes=["broadcast 10.60.0.255 dev eth0 table local"],
        queries=[out("10.60.0.255"), inp("eth0", "10.0.0.7", "10.60.0.255"), out("10.0.0.255"),
                 inp("eth0", "10.0.0.7", "10.0.0.255"), out("255.255.255.255")]),
    _sc("route-multicast", routes=["multicast 239.0.0.0/8 dev eth1", "multicast 10.70.0.0/16 dev eth0"],
        queries=[out("239.1.2.3"), out("10.70.1.1"), out("224.0.0.1"), inp("eth0", "10.0.0.7", "224.0.0.1"),
                 inp("eth0", "10.0.0.7", "239.1.2.3"), inp("eth0", "10.0.0.7", "10.70.1.1")]),
    _sc("route-anycast", routes=["anycast 10.80.0.0/24 dev eth0"],
        queries=[out("10.80.0.7"), inp("eth1", "10.1.0.7", "10.80.0.7")]),
    _sc("route-blackhole", routes=["blackhole 198.51.100.0/24"], sysctls=[("net.ipv4.conf.eth0.forwarding", "0")],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR), inp("eth0", "10.0.0.7", FAR), out(FAR, "--oif", "eth1")]),
    _sc("route-unreachable", routes=["unreachable 198.51.100.0/24"], sysctls=[("net.ipv4.conf.eth0.forwarding", "0")],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR), inp("eth0", "10.0.0.7", FAR)]),
    _sc("route-prohibit", routes=["prohibit 198.51.100.0/24"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR), out(FAR, "--src", "10.0.0.1")]),
    _sc("route-throw-in-main", routes=["throw 198.51.100.0/24"], queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("route-multipath", routes=["198.51.100.0/24 nexthop via 10.0.0.254 dev eth0 nexthop via 10.1.0.254 dev eth1 "
                                   "weight 3"],
        queries=[out(FAR), out("198.51.100.8"), out("198.51.100.9", "--src", "10.0.0.1"),
                 inp("eth0", "10.0.0.7", FAR), out(FAR, "--oif", "eth1")]),
    _sc("route-multipath-dead-and-linkdown-hops", down=["eth2"], addrs={"eth2": ["10.2.0.1/24"]},
        routes=["198.51.100.0/24 nexthop via 10.0.0.254 dev eth0 nexthop via 10.3.0.254 dev eth3 "
                "nexthop via 10.2.0.254 dev eth2"],
        sysctls=[("net.ipv4.conf.eth3.ignore_routes_with_linkdown", "1")],
        queries=[out(FAR), out("198.51.100.8"), inp("eth1", "10.1.0.7", FAR)]),
    _sc("route-linkdown", routes=["198.51.100.0/24 via 10.3.0.254 dev eth3", "203.0.113.0/24 via 10.3.0.254 dev eth3"
                                  " table 100"], rules=["to 203.0.113.0/24 lookup 100 pref 100"],
        sysctls=[("net.ipv4.conf.eth3.ignore_routes_with_linkdown", "1")],
        queries=[out(FAR), out("203.0.113.7"), out("10.3.0.7")]),
    _sc("route-onlink", routes=["198.51.100.0/24 via 172.31.0.1 dev eth2 onlink"],
        queries=[out(FAR), inp("eth0", "10.0.0.7", FAR)]),
    _sc("route-metric", routes=["198.51.100.0/24 via 10.0.0.254 dev eth0 metric 20",
                                "198.51.100.0/24 via 10.1.0.253 dev eth1 metric 10"], queries=[out(FAR)]),
    _sc("route-tos", routes=["198.51.100.0/24 tos 0x10 via 10.0.0.254 dev eth0", "198.51.100.0/24 via 10.1.0.253"],
        queries=[out(FAR), out(FAR, "--tos", "0x10"), out(FAR, "--tos", "0x12"), out(FAR, "--tos", "0x08"),
                 inp("eth1", "10.1.0.7", FAR, "--tos", "0x10")]),
    _sc("route-gateway-is-own-address", routes=["198.51.100.0/24 via 10.0.0.9 dev eth0"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("route-gateway-behind-local-route",
        routes=["local 10.90.0.0/24 dev eth0", "198.51.100.0/24 via 10.90.0.5 dev eth0"],
        queries=[out(FAR)]),
    _sc("route-gateway-behind-scope-host-route",
        routes=["10.9.0.0/24 dev eth0 scope host", "198.51.100.0/24 via 10.9.0.5 dev eth0"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("route-gateway-behind-local-route-in-a-rule-table",
        routes=["local 10.91.0.0/24 dev eth0 table 300", "198.51.100.0/24 via 10.91.0.5 dev eth0"],
        rules=["lookup 300 pref 100"], queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("route-gateway-is-own-address-resolved-by-main-before-local",
        rules=["lookup main pref 100", "lookup local pref 200"], rules_del=["pref 0 lookup local"],
        routes=["198.51.100.0/24 via 10.0.0.9 dev eth0"], queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("route-gateway-resolved-in-its-own-table", routes=["10.8.0.0/24 dev eth0 table 100",
                                                           "198.51.100.0/24 via 10.8.0.5 dev eth0 table 100"],
        rules=["lookup 100 pref 100"], queries=[out(FAR), out("10.8.0.7")]),
]

SOURCE_SCENARIOS = [
    _sc("source-in-the-gateway-subnet", routes=["198.51.100.0/24 via 192.168.50.254 dev eth0"],
        queries=[out(FAR), out("192.168.50.7"), out("10.0.0.7")]),
    _sc("source-primary-not-secondary", routes=["198.51.100.0/24 via 10.0.0.254 dev eth0"],
        queries=[out(FAR), out("10.0.0.7"), out(FAR, "--src", "10.0.0.9")]),
    _sc("source-route-prefsrc", routes=["198.51.100.0/24 via 10.0.0.254 dev eth0 src 10.0.0.9"],
        queries=[out(FAR), inp("eth1", "10.1.0.7", FAR)]),
    _sc("source-device-without-address", routes=["198.51.100.0/24 dev eth2", "203.0.113.0/24 via 172.31.0.1 dev eth2 "
                                                 "onlink"],
        queries=[out(FAR), out("203.0.113.7")]),
    _sc("source-device-without-address-no-lo-address", lo=(), routes=["198.51.100.0/24 dev eth2"],
        queries=[out(FAR)]),
    _sc("source-link-scope-address", addrs={"eth2": ["10.2.0.1/24 scope link"]},
        routes=["198.51.100.0/24 via 10.2.0.254 dev eth2"], queries=[out(FAR), out("10.2.0.7")]),
    _sc("source-host-scope-address", addrs={"eth2": ["10.2.0.1/24 scope host"]},
        routes=["198.51.100.0/24 via 172.31.0.1 dev eth2 onlink"], queries=[out(FAR), out("10.2.0.7")]),
    _sc("source-oif-without-route", base_routes=(),
        queries=[out(FAR, "--oif", "eth2"), out(FAR, "--oif", "eth0"), out(FAR, "--oif", "eth3")]),
    _sc("source-local-destination", queries=[out("10.0.0.9"), out("10.255.0.1"), out("127.0.0.1"), out("0.0.0.0")]),
    _sc("source-not-a-local-address", queries=[out(FAR, "--src", "203.0.113.1"), out(FAR, "--src", "10.0.0.9"),
                                               out(FAR, "--src", "10.255.0.1")]),
    _sc("source-no-address-at-all", addrs={"eth0": [], "eth1": [], "eth3": []}, lo=(),
        base_routes=("default via 172.31.0.1 dev eth1 onlink",),
        queries=[out(FAR), out(FAR, "--oif", "eth0"), out("127.0.0.1"), inp("eth0", "10.0.0.7", FAR)]),
    _sc("source-only-a-secondary-in-the-gateway-subnet", addrs={"eth1": ["10.1.0.1/24", "172.16.0.1/16",
                                                                         "172.16.9.9/16"]},
        routes=["198.51.100.0/24 via 172.16.5.5 dev eth1"], queries=[out(FAR)]),
]

RP_FILTER_ROUTE_SCENARIOS = [
    _sc("rp-filter-strict-route-get", sysctls=[("net.ipv4.conf.all.rp_filter", "1")],
        queries=[inp("eth0", "10.1.0.99", "10.1.0.7"), inp("eth0", "10.0.0.2", "10.1.0.7"),
                 inp("eth0", "198.51.100.9", "10.0.0.1"), inp("eth1", "198.51.100.9", "10.0.0.7")]),
    _sc("rp-filter-loose-route-get", base_routes=(), sysctls=[("net.ipv4.conf.eth0.rp_filter", "2")],
        queries=[inp("eth0", "10.1.0.99", "10.1.0.7"), inp("eth0", "198.51.100.9", "10.1.0.7")]),
    _sc("rp-filter-strict-with-src-valid-mark", rules=["fwmark 0x7 lookup 100 pref 100"],
        sysctls=[("net.ipv4.conf.all.rp_filter", "1"), ("net.ipv4.conf.eth0.src_valid_mark", "1")],
        queries=[inp("eth0", "198.51.100.9", "10.1.0.7", "--mark", "7"), inp("eth0", "198.51.100.9", "10.1.0.7")]),
    _sc("accept-local", sysctls=[("net.ipv4.conf.eth0.accept_local", "1")],
        queries=[inp("eth0", "10.1.0.1", "10.0.0.1"), inp("eth1", "10.0.0.1", "10.1.0.1")]),
]

ROUTE_SCENARIOS = SELECTOR_SCENARIOS + ACTION_SCENARIOS + ROUTE_TYPE_SCENARIOS + SOURCE_SCENARIOS + \
    RP_FILTER_ROUTE_SCENARIOS


def _params(cases: Sequence[Scenario]) -> list[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=f"pktpath bug: {c.bug}")]
                         if c.bug else []) for c in cases]


@pytest.mark.kernel
@pytest.mark.parametrize("case", _params(ROUTE_SCENARIOS))
def test_route_scenario(netns: None, tmp_path: Path, case: Scenario) -> None:
    run = rf.run_setup(case.setup, tmp_path / "snap")
    assert run.refused == [], f"setup refused by the kernel: {run.refused}"
    diffs = route_disagreements(run)
    assert not diffs, report(run, diffs)
    if case.varied:
        answers = {json.dumps(a.expected.get("error") or rf.norm(a.expected)) for a in run.answers}
        assert len(answers) > 1, "the selector made no difference to the kernel"


# ---------------------------------------------------------------------------------------------
# (b) routing inside the packet path: pktpath trace/flow vs the sandbox


NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
MANGLE = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
          ":POSTROUTING ACCEPT [0:0]\n")
FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def snapshot_of(setup: rf.Setup, dest: Path, iptables: str) -> Path:
    """``setup`` built in a namespace and collected, plus the ruleset the sandbox loads."""
    with rf.built(replace(setup, ipv6=False), dest) as (_, refused):
        assert refused == [], f"setup refused by the kernel: {refused}"
    (dest / "iptables-save.txt").write_text(iptables)
    return dest


def trace_json(snap: Path, args: Args) -> dict[str, Any]:
    data: dict[str, Any] = pktpath("trace", str(snap), *args, "--format", "json")
    return data


def explain(kernel: KernelRun, ours: dict[str, Any], diffs: Sequence[str]) -> str:
    return "\n".join([*diffs, "kernel:  " + " ".join(e["id"] for e in kernel.trace),
                      "pktpath: " + " ".join(e["id"] for e in ours["trace"]), f"kernel result: {kernel.result}",
                      f"pktpath result: {ours['result']}", f"kernel evidence: {kernel.evidence}"])


# MASQUERADE: a forwarded packet from 10.0.0.2 (eth0) leaves eth1; which source does the kernel give it?
MASQ_RULES = NAT + "-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n" + FILTER
MASQ_PACKET = ["--iif", "eth0", "--src", "10.0.0.2", "--dst", FAR, "--proto", "udp", "--sport", "40000",
               "--dport", "53"]
ONLINK_DEFAULT = "default via 172.31.0.1 dev eth1 onlink"


@dataclass(frozen=True)
class MasqCase:
    id: str
    eth1: list[str]
    default: str
    want: str | None  # the source MASQUERADE gives the packet; None: it drops the packet
    dst: str = FAR
    lo: tuple[str, ...] = ()
    eth0: tuple[str, ...] = ("10.0.0.1/24",)


MASQ_CASES = [
    MasqCase("multiple-addresses-gateway-in-the-second", ["10.1.0.1/24", "192.0.2.1/24"],
             "default via 192.0.2.254 dev eth1", "192.0.2.1"),
    MasqCase("multiple-addresses-gateway-in-the-first", ["10.1.0.1/24", "192.0.2.1/24"],
             "default via 10.1.0.254 dev eth1", "10.1.0.1"),
    MasqCase("secondary-address-not-chosen", ["10.1.0.1/24", "10.1.0.50/24"], "default via 10.1.0.254 dev eth1",
             "10.1.0.1"),
    MasqCase("primary-of-the-gateway-subnet-with-secondaries", ["10.1.0.1/24", "172.16.0.1/16", "172.16.9.9/16"],
             "default via 172.16.5.5 dev eth1", "172.16.0.1"),
    MasqCase("gateway-out-of-every-subnet", ["10.1.0.1/24", "192.0.2.1/24"], ONLINK_DEFAULT, "10.1.0.1"),
    MasqCase("no-gateway-destination-in-second-subnet", ["10.1.0.1/24", "192.0.2.1/24"],
             "default via 10.1.0.254 dev eth1", "192.0.2.1", dst="192.0.2.7"),
    MasqCase("link-scope-address-skipped", ["10.1.0.1/24 scope link"], ONLINK_DEFAULT, "10.0.0.1"),
    MasqCase("no-address-on-the-device", [], ONLINK_DEFAULT, "10.0.0.1"),
    MasqCase("no-address-on-the-device-address-on-lo", [], ONLINK_DEFAULT, "10.255.0.1", lo=("10.255.0.1/32",)),
    MasqCase("no-address-at-all", [], ONLINK_DEFAULT, None, eth0=()),
]


def masq_host(case: MasqCase) -> rf.Setup:
    return rf.Setup(name=f"masq-{case.id}", ifaces=[
        rf.Iface("eth0", list(case.eth0), mac="02:00:00:00:00:01"),
        rf.Iface("eth1", list(case.eth1), mac="02:00:00:00:01:01")],
        routes=[case.default], sysctls=BASE_SYSCTLS, lo_addrs=list(case.lo))


@pytest.mark.kernel
@pytest.mark.parametrize("case", MASQ_CASES, ids=[c.id for c in MASQ_CASES])
def test_masquerade_source(kernel_sandbox: RunTrace, tmp_path: Path, case: MasqCase) -> None:
    snap = snapshot_of(masq_host(case), tmp_path / "snap", MASQ_RULES)
    args = [*MASQ_PACKET[:5], case.dst, *MASQ_PACKET[6:]]
    kernel = kernel_sandbox(snap, args)
    ours = trace_json(snap, args)
    assert kernel.evidence["warnings"] == []
    got, want = ours["result"], kernel.result
    assert (got["disposition"], got.get("oif")) == (want["disposition"], want.get("oif")), explain(kernel, ours, [])
    if want["disposition"] == "forwarded":
        assert got["packet"]["src"] == want["packet"]["src"], explain(kernel, ours, ["MASQUERADE chose another source"])
    if case.want is None:  # what the scenario is about
        assert want["disposition"] == "dropped", f"kernel: {want}"
    else:
        assert want["packet"]["src"] == case.want, f"kernel: {want}"
    diffs = compare({"trace": kernel.trace, "result": kernel.result}, ours["trace"], ours["result"])
    assert not diffs, explain(kernel, ours, diffs)


# rp_filter: a packet arrives on eth0; the kernel's drop shows in TcpExt.IPReversePathFilter.
@dataclass(frozen=True)
class RpCase:
    id: str
    sysctls: list[tuple[str, str]]
    src: str
    dst: str = "10.1.0.7"
    dropped: bool = True
    routes: tuple[str, ...] = (MAIN_DEFAULT,)
    rules: tuple[str, ...] = ()
    mark: str | None = None


RP_CASES = [
    RpCase("strict-reply-route-by-another-device", [("net.ipv4.conf.all.rp_filter", "1")], "10.1.0.99"),
    RpCase("strict-reply-route-by-the-default-route", [("net.ipv4.conf.eth0.rp_filter", "1")], "198.51.100.9"),
    RpCase("strict-reply-route-by-the-same-device", [("net.ipv4.conf.all.rp_filter", "1")], "10.0.0.2",
           dropped=False),
    RpCase("strict-local-delivery", [("net.ipv4.conf.all.rp_filter", "1")], "10.1.0.99", dst="10.0.0.1"),
    RpCase("loose-reply-route-by-another-device", [("net.ipv4.conf.all.rp_filter", "2")], "10.1.0.99",
           dropped=False),
    RpCase("loose-no-reply-route", [("net.ipv4.conf.all.rp_filter", "2")], "198.51.100.9", routes=()),
    RpCase("loose-reply-route-unreachable", [("net.ipv4.conf.all.rp_filter", "2")], "198.51.100.9",
           routes=(MAIN_DEFAULT, "unreachable 198.51.100.0/24")),
    RpCase("max-of-all-and-device-strict", [("net.ipv4.conf.all.rp_filter", "0"),
                                            ("net.ipv4.conf.eth0.rp_filter", "1")], "10.1.0.99"),
    RpCase("max-of-all-and-device-loose", [("net.ipv4.conf.all.rp_filter", "2"),
                                           ("net.ipv4.conf.eth0.rp_filter", "1")], "10.1.0.99", dropped=False),
    RpCase("strict-src-valid-mark-reverse-route-by-mark",
           [("net.ipv4.conf.all.rp_filter", "1"), ("net.ipv4.conf.eth0.src_valid_mark", "1")], "198.51.100.9",
           routes=(MAIN_DEFAULT, TABLE_100), rules=("fwmark 0x7 lookup 100 pref 100",), mark="7", dropped=False),
    RpCase("strict-mark-ignored-without-src-valid-mark", [("net.ipv4.conf.all.rp_filter", "1")], "198.51.100.9",
           routes=(MAIN_DEFAULT, TABLE_100), rules=("fwmark 0x7 lookup 100 pref 100",), mark="7"),
]


@pytest.mark.kernel
@pytest.mark.parametrize("case", RP_CASES, ids=[c.id for c in RP_CASES])
def test_rp_filter(kernel_sandbox: RunTrace, tmp_path: Path, case: RpCase) -> None:
    setup = rf.Setup(name=f"rp-{case.id}", ifaces=[rf.Iface("eth0", ["10.0.0.1/24"], mac="02:00:00:00:00:01"),
                                                   rf.Iface("eth1", ["10.1.0.1/24"], mac="02:00:00:00:01:01")],
                     routes=list(case.routes), rules=list(case.rules), sysctls=[*BASE_SYSCTLS, *case.sysctls])
    snap = snapshot_of(setup, tmp_path / "snap", FILTER)
    args = ["--iif", "eth0", "--src", case.src, "--dst", case.dst, "--proto", "udp", "--sport", "40000",
            "--dport", "53", *(["--mark", case.mark] if case.mark else [])]
    kernel = kernel_sandbox(snap, args)
    ours = trace_json(snap, args)
    assert kernel.evidence["warnings"] == []
    counted = kernel.evidence["snmp_delta"].get(RP_FILTER_COUNTER, 0)
    assert counted == (1 if case.dropped else 0), f"kernel: {RP_FILTER_COUNTER} +{counted}, {kernel.result}"
    got, want = ours["result"], kernel.result
    assert got["disposition"] == want["disposition"], explain(kernel, ours, [])
    if case.dropped:
        assert "rp_filter" in got["reason"], f"pktpath's reason does not name rp_filter: {got['reason']!r}"
    else:
        assert "rp_filter" not in got["reason"]
    diffs = compare({"trace": kernel.trace, "result": kernel.result}, ours["trace"], ours["result"])
    assert not diffs, explain(kernel, ours, diffs)


# A local packet whose mark mangle OUTPUT sets is routed again (ip_route_me_harder) by the mark's rule.
LOCAL_UDP = ["--local", "--dst", FAR, "--proto", "udp", "--sport", "40000", "--dport", "53"]
MARK_CASES = [  # name, ruleset, routes, packet, where the kernel sends it (an oif, or a disposition)
    ("mark-selects-another-table", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n",
     [MAIN_DEFAULT, TABLE_100], LOCAL_UDP, "eth0"),
    ("mark-without-matching-rule", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x8/0xffffffff\nCOMMIT\n",
     [MAIN_DEFAULT, TABLE_100], LOCAL_UDP, "eth1"),
    ("mark-only-some-packets", MANGLE + "-A OUTPUT -p udp --dport 54 -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n",
     [MAIN_DEFAULT, TABLE_100], LOCAL_UDP, "eth1"),
    ("mark-with-bound-source", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n",
     [MAIN_DEFAULT, TABLE_100], [*LOCAL_UDP, "--src", "10.0.0.1"], "eth0"),
    ("mark-reroute-into-a-blackhole", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n",
     [MAIN_DEFAULT, "blackhole default table 100"], LOCAL_UDP, "unroutable"),
    ("mark-reroute-then-masquerade", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n"
     + NAT + "-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n", [MAIN_DEFAULT, TABLE_100], LOCAL_UDP, "eth0"),
]


def where(result: dict[str, Any]) -> str:
    return str(result["oif"]) if result["disposition"] in ("sent", "forwarded") else str(result["disposition"])


@pytest.mark.kernel
@pytest.mark.parametrize("ruleset,routes,args,expect", [c[1:] for c in MARK_CASES], ids=[c[0] for c in MARK_CASES])
def test_fwmark_reroutes_local_packet(kernel_sandbox: RunTrace, tmp_path: Path, ruleset: str, routes: list[str],
                                      args: Args, expect: str) -> None:
    """The source stays the one chosen by the first lookup (10.1.0.1 unless bound or masqueraded)."""
    setup = rf.Setup(name="mark", ifaces=[rf.Iface("eth0", ["10.0.0.1/24"], mac="02:00:00:00:00:01"),
                                          rf.Iface("eth1", ["10.1.0.1/24"], mac="02:00:00:00:01:01")],
                     routes=routes, rules=["fwmark 0x7 lookup 100 pref 100"], sysctls=BASE_SYSCTLS)
    snap = snapshot_of(setup, tmp_path / "snap", ruleset)
    kernel = kernel_sandbox(snap, args)
    ours = trace_json(snap, args)
    assert kernel.evidence["warnings"] == []
    diffs = compare({"trace": kernel.trace, "result": kernel.result}, ours["trace"], ours["result"], local=True)
    assert not diffs, explain(kernel, ours, diffs)
    assert where(kernel.result) == expect, f"kernel: {kernel.result}"


# DNAT in PREROUTING, then input routing on the new destination with policy rules.
DNAT = NAT + "-A PREROUTING -d 10.0.0.1/32 -p tcp --dport 80 -j DNAT --to-destination 192.168.100.5:8080\nCOMMIT\n"
TABLE_200 = "192.168.100.0/24 via 172.31.0.1 dev eth2 onlink table 200"
DNAT_PACKET = ["--iif", "eth0", "--src", "10.0.0.2", "--dst", "10.0.0.1", "--proto", "tcp", "--sport", "40000",
               "--dport", "80"]
DNAT_CASES = [  # name, ruleset, ip rules, packet, where the kernel sends it
    ("from-rule-on-the-dnat-table", DNAT, ["from 10.0.0.0/24 lookup 200 pref 100"], DNAT_PACKET, "eth2"),
    ("from-rule-other-source", DNAT, ["from 10.0.0.0/24 lookup 200 pref 100"],
     ["--iif", "eth1", "--src", "10.1.0.2", *DNAT_PACKET[4:]], "eth1"),
    ("to-rule-on-the-new-destination", DNAT, ["to 192.168.100.0/24 lookup 200 pref 100"], DNAT_PACKET, "eth2"),
    ("to-rule-on-the-old-destination", DNAT, ["to 10.0.0.1 lookup 200 pref 100"], DNAT_PACKET, "eth1"),
    ("fwmark-rule-mark-set-before-dnat", MANGLE + "-A PREROUTING -d 10.0.0.1/32 -j MARK --set-xmark "
     "0x9/0xffffffff\nCOMMIT\n" + DNAT, ["fwmark 0x9 lookup 200 pref 100"], DNAT_PACKET, "eth2"),
    ("iif-rule", DNAT, ["iif eth0 lookup 200 pref 100"], DNAT_PACKET, "eth2"),
    ("dnat-to-a-blackholed-destination", DNAT, ["from 10.0.0.0/24 lookup 201 pref 100"], DNAT_PACKET, "unroutable"),
]


@pytest.mark.kernel
@pytest.mark.parametrize("ruleset,rules,args,expect", [c[1:] for c in DNAT_CASES], ids=[c[0] for c in DNAT_CASES])
def test_dnat_then_policy_routing(kernel_sandbox: RunTrace, tmp_path: Path, ruleset: str, rules: list[str],
                                  args: Args, expect: str) -> None:
    """10.0.0.1:80 is DNATed to 192.168.100.5:8080, which main routes by eth1 and table 200 by eth2."""
    # (no eth3: the sandbox cannot watch an interface without carrier)
    setup = host(name="dnat", lo=(), routes=[TABLE_200, "blackhole 192.168.100.0/24 table 201"], rules=rules,
                 without=["eth3"])
    snap = snapshot_of(setup, tmp_path / "snap", ruleset + FILTER)
    kernel = kernel_sandbox(snap, args)
    ours = trace_json(snap, args)
    assert kernel.evidence["warnings"] == []
    diffs = compare({"trace": kernel.trace, "result": kernel.result}, ours["trace"], ours["result"])
    assert not diffs, explain(kernel, ours, diffs)
    assert where(kernel.result) == expect, f"kernel: {kernel.result}"


# A cloud host with a second interface: eth0 10.0.0.1/24 (default route), eth1 10.1.0.1/24 with
# its own gateway in table 2.  sshd listens on 10.1.0.1.  A client far away connects to it through
# eth1; the SYN,ACK must leave by eth1 too (the provider drops it elsewhere), so connections that
# came in on eth1 are CONNMARKed and their replies routed by `ip rule fwmark 0x2 lookup 2`.
CLOUD_MANGLE = (MANGLE + "-A PREROUTING -i eth1 -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x2/0xffffffff\n"
                "-A OUTPUT -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\nCOMMIT\n" + FILTER)
CLIENT = "198.51.100.7"


@dataclass(frozen=True)
class CloudCase:
    id: str
    rules: list[str]
    ruleset: str = CLOUD_MANGLE
    rp_filter: str = "2"
    reply_oif: str | None = "eth1"  # None: the SYN is dropped


CLOUD_CASES = [
    CloudCase("connmark-and-fwmark-rule", ["fwmark 0x2 lookup 2 pref 100"]),
    CloudCase("without-the-fwmark-rule-replies-leave-by-eth0", [], reply_oif="eth0"),
    CloudCase("without-connmark-replies-leave-by-eth0", ["fwmark 0x2 lookup 2 pref 100"], ruleset=FILTER,
              reply_oif="eth0"),
    CloudCase("strict-rp-filter-drops-the-syn", ["fwmark 0x2 lookup 2 pref 100"], rp_filter="1", reply_oif=None),
    CloudCase("source-rule-instead-passes-strict-rp-filter", ["from 10.1.0.1 lookup 2 pref 100"], ruleset=FILTER,
              rp_filter="1"),
]


@contextlib.contextmanager
def listening(box: Sandbox, addr: str, port: int) -> Iterator[None]:
    """A TCP listener in the sandbox's host namespace (the kernel answers the SYN, no RST)."""
    with box.host.ns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, port))
        sock.listen()
        yield
    finally:
        sock.close()


def packet_args(packet: dict[str, Any]) -> Args:
    """``pktpath trace`` arguments for one packet of a ``pktpath flow`` exchange."""
    args = ["--iif", packet["iif"]] if packet.get("iif") else ["--local"]
    args += ["--src", packet["src"], "--dst", packet["dst"], "--proto", packet["proto"],
             "--sport", str(packet["sport"]), "--dport", str(packet["dport"])]
    return args + (["--tcp-flags", str(packet["tcp_flags"])] if packet.get("tcp_flags") else [])


@pytest.mark.kernel
@pytest.mark.parametrize("case", CLOUD_CASES, ids=[c.id for c in CLOUD_CASES])
def test_multi_interface_cloud_host_replies(kernel_sandbox: RunTrace, tmp_path: Path, case: CloudCase) -> None:
    setup = rf.Setup(name=f"cloud-{case.id}", ifaces=[rf.Iface("eth0", ["10.0.0.1/24"], mac="02:00:00:00:00:01"),
                                                      rf.Iface("eth1", ["10.1.0.1/24"], mac="02:00:00:00:01:01")],
                     routes=["default via 10.0.0.254 dev eth0", "default via 10.1.0.254 dev eth1 table 2"],
                     rules=case.rules, sysctls=[*BASE_SYSCTLS, ("net.ipv4.conf.all.rp_filter", case.rp_filter)])
    snap = snapshot_of(setup, tmp_path / "snap", case.ruleset)
    flow = pktpath("flow", str(snap), "--iif", "eth1", "--src", CLIENT, "--dst", "10.1.0.1", "--proto", "tcp",
                   "--sport", "40000", "--dport", "22", "--then", "reply:SYN,ACK", "--format", "json")
    packets = flow["packets"]
    assert len(packets) == (1 if case.reply_oif is None else 2), json.dumps(flow, indent=1)
    with Sandbox(snap) as box, listening(box, "10.1.0.1", 22):
        assert box.host.warnings == []
        for packet in packets:
            kernel = box.send(packet_args(packet["packet"]))
            diffs = compare({"trace": kernel.trace, "result": kernel.result}, packet["trace"], packet["result"],
                            local=packet["packet"].get("iif") is None)
            assert not diffs, f"packet {packet['step']}:\n" + explain(kernel, packet, diffs)
            if packet["step"] == 1:
                dropped = kernel.evidence["snmp_delta"].get(RP_FILTER_COUNTER, 0)
                assert dropped == (1 if case.reply_oif is None else 0), kernel.evidence
    if case.reply_oif is None:
        assert "rp_filter" in packets[0]["result"]["reason"]
    else:
        assert (packets[1]["result"]["disposition"], packets[1]["result"]["oif"]) == ("sent", case.reply_oif)
