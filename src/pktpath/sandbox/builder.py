"""Rebuild a snapshot's host in a fresh network namespace.

Every non-lo interface becomes one end of a veth pair, same name, MAC, MTU and
addresses; the other end lives alone in a per-interface peer namespace that answers ARP
for every address (a ``local 0.0.0.0/0`` route), so forwarded packets really leave
instead of waiting for a neighbour that does not exist.  Then routes of all tables,
ip rules, sysctls, ipsets and the iptables-legacy ruleset (with TRACE first in raw).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pktpath.sandbox.commands import (
    addr_args,
    is_default_rule,
    route_args,
    route_key,
    rule_args,
    rule_key,
    sysctl_path,
    sysctl_phases,
)
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.netns import NetNS, run
from pktpath.sandbox.ruleset import Table, TraceInsertion, parse_save, with_trace
from pktpath.sandbox.snapshot import Snapshot

PEER_IFNAME = "ppk-peer"
NO_IPV6 = [("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1")]
# The peer answers ARP for any address, including ones the host owns.
PEER_SYSCTLS = [*NO_IPV6,
                *[(f"net.ipv4.conf.{s}.{k}", v) for s in ("all", "default")
                  for k, v in (("accept_local", "1"), ("rp_filter", "0"), ("arp_ignore", "0"),
                               ("arp_filter", "0"))]]
NF_LOGGERS = ("nf_log_syslog", "nf_log_ipv4")
LINK_WAIT = 5.0


@dataclass(frozen=True)
class Iface:
    name: str
    mac: str
    peer: NetNS
    peer_mac: str
    admin_up: bool
    carrier: bool


@dataclass
class Host:
    """The built host namespace and what the send step needs to know about it."""

    ns: NetNS
    ifaces: dict[str, Iface] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    insertion: TraceInsertion = TraceInsertion(False, frozenset())
    warnings: list[str] = field(default_factory=list)  # the snapshot was not reproduced exactly
    notes: list[str] = field(default_factory=list)  # known differences by design


def write_sysctls(ns: NetNS, items: list[tuple[str, str]]) -> list[str]:
    """Write /proc/sys/net keys inside ns; keys it does not have are skipped silently."""
    failed: list[str] = []
    with ns.entered():  # /proc/sys/net follows the calling thread's namespace
        for key, value in items:
            path = Path("/proc/sys") / sysctl_path(key)
            try:
                if path.read_text().split() == value.split():
                    continue
                path.write_text(value + "\n")
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed.append(f"sysctl {key}={value}: {exc.strerror}")
    return failed


def _mac(link: Mapping[str, Any], fallback: str) -> str:
    mac = link.get("address")
    ok = isinstance(mac, str) and len(mac.split(":")) == 6 and mac != "00:00:00:00:00:00"
    return str(mac) if ok else fallback


def _make_iface(host: Host, link: Mapping[str, Any], index: int, peer_mac: str | None,
                create_ns: Callable[[str], NetNS]) -> Iface:
    name = str(link["ifname"])
    flags = set(link.get("flags", []))
    peer = create_ns(f"{host.ns.name}-p{index}")
    host.warnings += write_sysctls(peer, PEER_SYSCTLS)
    mac = _mac(link, f"02:70:6b:00:{index // 256:02x}:{index % 256:02x}")
    pmac = peer_mac or f"02:70:6b:01:{index // 256:02x}:{index % 256:02x}"
    mtu = ["mtu", str(min(int(link["mtu"]), 65535))] if "mtu" in link else []
    host.ns.ip("link", "add", "name", name, "address", mac, *mtu, "type", "veth",
               "peer", "name", PEER_IFNAME, "netns", peer.name, "address", pmac, *mtu)
    if "NOARP" in flags:
        host.ns.ip("link", "set", "dev", name, "arp", "off")
    carrier = "LOWER_UP" in flags or ("NO-CARRIER" not in flags and link.get("operstate") != "DOWN")
    peer_setup = ["link set dev lo up", "route add local 0.0.0.0/0 dev lo table local"]
    if carrier:  # no carrier on the host end while the peer end is down
        peer_setup.append(f"link set dev {PEER_IFNAME} up")
    peer.ip("-batch", "-", input="\n".join(peer_setup) + "\n")
    return Iface(name, mac, peer, pmac, "UP" in flags, carrier)


def _operstate(ns: NetNS, ifname: str) -> str:
    links = _dump(ns, "link", "show", "dev", ifname)
    return str(links[0].get("operstate", "")) if links else ""


def _wait_links(host: Host) -> None:
    """A just-raised veth drops what is sent on it until its qdisc is live: wait for UP.

    Both ends matter: the peer end sends the injected frames and the ARP replies that let
    forwarded packets leave.
    """
    pending = [(ns, name) for i in host.ifaces.values() if i.carrier
               for ns, name in ((host.ns, i.name), (i.peer, PEER_IFNAME))]
    deadline = time.monotonic() + LINK_WAIT
    while pending:
        pending = [(ns, name) for ns, name in pending if _operstate(ns, name) != "UP"]
        if pending and time.monotonic() > deadline:
            host.warnings.append(f"links not up after {LINK_WAIT}s: {[f'{ns.name}/{n}' for ns, n in pending]}")
            return
        if pending:
            time.sleep(0.02)


def _dump(ns: NetNS, *what: str) -> list[dict[str, Any]]:
    out = ns.ip("-j", *what).stdout.strip()
    data = json.loads(out) if out else []
    return data if isinstance(data, list) else []


def _sync_routes(host: Host, routes: list[dict[str, Any]] | None) -> None:
    """Make the namespace's routes (all tables) equal the snapshot's.

    Kernel routes (prefix, local, broadcast) reappear from the addresses; what is missing
    is added with ``replace`` (a few passes, since a gateway may need a route added
    later), what the snapshot does not have is deleted.
    """
    if routes is None:
        return
    want = {route_key(r): r for r in routes}
    have: dict[str, dict[str, Any]] = {}
    for _ in range(4):
        have = {route_key(r): r for r in _dump(host.ns, "route", "show", "table", "all")}
        missing = [r for k, r in want.items() if k not in have]
        if not missing:
            break
        batch = "".join("route replace " + " ".join(route_args(r)) + "\n" for r in missing)
        host.ns.ip("-batch", "-", "-force", input=batch, check=False)
    for key, r in have.items():
        if key not in want:
            host.ns.ip("route", "del", *route_args(r), check=False)
    have = {route_key(r): r for r in _dump(host.ns, "route", "show", "table", "all")}
    host.warnings += [f"route not reproduced: {' '.join(route_args(r))}"
                      for k, r in want.items() if k not in have]
    host.warnings += [f"extra route: {' '.join(route_args(r))}" for k, r in have.items() if k not in want]


def _sync_rules(host: Host, rules: list[dict[str, Any]] | None) -> None:
    if rules is None:
        return  # kernel default rules, which a new namespace has
    host.ns.ip("rule", "flush")  # leaves only the priority-0 rules
    if not any(r.get("priority") == 0 and is_default_rule(r) for r in rules):
        host.ns.ip("rule", "del", "pref", "0", "table", "local", check=False)
    batch = "".join("rule add " + " ".join(rule_args(r)) + "\n" for r in rules
                    if not (r.get("priority") == 0 and is_default_rule(r)))
    if batch:
        proc = host.ns.ip("-batch", "-", "-force", input=batch, check=False)
        if proc.returncode:
            host.warnings.append(f"ip rule: {proc.stderr.strip()}")
    got = [rule_key(r) for r in _dump(host.ns, "rule", "show")]
    if got != [rule_key(r) for r in rules]:
        host.warnings.append("ip rules differ from the snapshot after loading")


def _try_nf_loggers(host: Host) -> bool:
    with host.ns.entered():
        path = Path("/proc/sys/net/netfilter/nf_log/2")
        for logger in NF_LOGGERS:
            try:
                path.write_text(logger + "\n")
            except OSError:
                continue
            if path.read_text().strip() == logger:
                return True
    return False


def _set_nf_logger(host: Host) -> None:
    """Route AF_INET nf_log output (TRACE) to the kernel log inside the namespace."""
    if _try_nf_loggers(host):
        return
    run(["modprobe", "nf_log_syslog"], check=False)  # a modular kernel may not have it loaded
    if not _try_nf_loggers(host):
        raise SandboxError("no nf_log backend for AF_INET (nf_log_syslog / nf_log_ipv4) in this kernel")


def build(snap: Snapshot, host_ns: NetNS, peer_macs: Mapping[str, str],
          create_ns: Callable[[str], NetNS]) -> Host:
    """Configure host_ns from the snapshot; create_ns makes (and registers) peer namespaces."""
    host = Host(host_ns)
    if snap.conntrack_entries:
        host.notes.append(f"conntrack.txt has {snap.conntrack_entries} entries; the sandbox starts with "
                          "an empty conntrack table")
    early, per_dev, netfilter = sysctl_phases(snap.sysctl)
    host.warnings += write_sysctls(host.ns, NO_IPV6 + early)
    lo_up = True
    for index, link in enumerate(snap.links):
        if link.get("ifname") == "lo" or "LOOPBACK" in link.get("flags", []):
            lo_up = "UP" in link.get("flags", ["UP"])
            continue
        iface = _make_iface(host, link, index, peer_macs.get(str(link["ifname"])), create_ns)
        host.ifaces[iface.name] = iface
    host.warnings += write_sysctls(host.ns, per_dev)
    batch = "".join("addr add " + " ".join(addr_args(ifname, a)) + "\n"
                    for ifname, addrs in snap.addrs.items() for a in addrs
                    if not (ifname == "lo" and a.get("local") == "127.0.0.1" and a.get("prefixlen") == 8))
    if batch:
        proc = host.ns.ip("-batch", "-", "-force", input=batch, check=False)
        if proc.returncode:
            host.warnings.append(f"ip addr: {proc.stderr.strip()}")
    host.ns.ip("link", "set", "lo", "up")
    for iface in host.ifaces.values():
        host.ns.ip("link", "set", "dev", iface.name, "up")
    _wait_links(host)
    _sync_routes(host, snap.routes)
    _sync_rules(host, snap.rules)
    if snap.ipset:
        host.ns.exec(["ipset", "restore", "-exist"], input=snap.ipset)
    ruleset, host.insertion = with_trace(snap.iptables)
    host.ns.exec(["iptables-legacy-restore", "-w", "30"], input=ruleset, timeout=40)
    host.tables = parse_save(host.ns.exec(["iptables-legacy-save"]).stdout)
    host.warnings += write_sysctls(host.ns, netfilter)
    _set_nf_logger(host)
    # Admin-down links last: taking a link down removes its routes, as on the real host.
    for iface in host.ifaces.values():
        if not iface.admin_up:
            host.ns.ip("link", "set", "dev", iface.name, "down")
    if not lo_up:
        host.ns.ip("link", "set", "lo", "down")
    return host
