"""Build a random scenario as a real host: a network namespace configured the way an
administrator would (``ip link/addr/route/rule``, ``sysctl``, ``ipset restore``,
``iptables-legacy-restore``), so ``pktpath collect --netns`` can snapshot it.

Only namespaces created here (``pktpath.sandbox.netns.NetNS``: our prefix, ownership
records) are configured, entered or deleted; they are deleted on every exit path.  No
packet is sent in them.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

from pktpath.sandbox.builder import write_sysctls
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.netns import NetNS, new_base_name
from pktpath.verify.scenario import Scenario

LINK_WAIT = 5.0
NO_IPV6 = [("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1")]


class ScenarioBuildError(SandboxError):
    """The scenario could not be built (a generator bug: the kernel refused a line)."""


def _ip(ns: NetNS, *args: str) -> None:
    proc = ns.ip(*args, check=False)
    if proc.returncode:
        raise ScenarioBuildError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _operstate(ns: NetNS, dev: str) -> str:
    out = ns.ip("-j", "link", "show", "dev", dev, check=False).stdout.strip()
    data = json.loads(out) if out else []
    return str(data[0].get("operstate", "")) if data else ""


def _wait_up(pairs: list[tuple[NetNS, str]]) -> None:
    deadline = time.monotonic() + LINK_WAIT
    while pairs:
        pairs = [(ns, dev) for ns, dev in pairs if _operstate(ns, dev) != "UP"]
        if pairs and time.monotonic() > deadline:
            raise ScenarioBuildError(f"links not up after {LINK_WAIT}s: {[d for _, d in pairs]}")
        if pairs:
            time.sleep(0.02)


def configure(host: NetNS, peer: NetNS, scen: Scenario) -> None:
    """Apply the scenario to the (fresh) host namespace; veth peers go to ``peer``."""
    write_sysctls(host, NO_IPV6)
    write_sysctls(peer, NO_IPV6)
    _ip(host, "link", "set", "lo", "up")
    for k, iface in enumerate(scen.ifaces, start=1):
        _ip(host, "link", "add", "name", iface.name, "address", iface.mac, "type", "veth",
            "peer", "name", f"p{k}", "netns", peer.name, "address", iface.peer_mac)
    # ip_forward first: writing it resets every interface's forwarding flag.
    items = sorted(scen.sysctl.items(), key=lambda kv: kv[0] != "net.ipv4.ip_forward")
    failed = write_sysctls(host, items)
    if failed:
        raise ScenarioBuildError("; ".join(failed))
    for iface in scen.ifaces:
        for addr in iface.addrs:
            _ip(host, "addr", "add", addr, "dev", iface.name)
    for addr in scen.lo_addrs:
        _ip(host, "addr", "add", addr, "dev", "lo")
    for k, iface in enumerate(scen.ifaces, start=1):
        _ip(host, "link", "set", "dev", iface.name, "up")
        _ip(peer, "link", "set", "dev", f"p{k}", "up")
    _wait_up([(host, i.name) for i in scen.ifaces] + [(peer, f"p{k}") for k in range(1, len(scen.ifaces) + 1)])
    for route in scen.routes:
        _ip(host, "route", "add", *route.split())
    for rule in scen.rules:
        _ip(host, "rule", "add", *rule.split())
    if scen.ipset:
        proc = host.exec(["ipset", "restore", "-exist"], input=scen.ipset, check=False)
        if proc.returncode:
            raise ScenarioBuildError(f"ipset restore: {proc.stderr.strip()}")
    proc = host.exec(["iptables-legacy-restore", "-w", "30"], input=scen.iptables, check=False, timeout=40)
    if proc.returncode:
        raise ScenarioBuildError(f"iptables-legacy-restore: {proc.stderr.strip()}")


@contextlib.contextmanager
def built(scen: Scenario) -> Iterator[NetNS]:
    """The scenario as a live namespace (yielded); both namespaces are deleted afterwards."""
    base = new_base_name()
    made: list[NetNS] = []
    try:
        host = NetNS.create(f"{base}-g")
        made.append(host)
        peer = NetNS.create(f"{base}-gp")
        made.append(peer)
        configure(host, peer, scen)
        yield host
    finally:
        while made:
            made.pop().delete()
