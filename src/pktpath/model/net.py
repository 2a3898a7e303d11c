"""Interfaces, addresses, routes, policy-routing rules and sysctls of one host (IPv4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pktpath.errors import SourceLoc
from pktpath.model.addr import Prefix

# Routing table ids as the kernel numbers them (include/uapi/linux/rtnetlink.h, enum rt_class_t).
RT_TABLE_UNSPEC = 0
RT_TABLE_DEFAULT = 253
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
TABLE_NAMES: Mapping[str, int] = {
    "unspec": RT_TABLE_UNSPEC,
    "default": RT_TABLE_DEFAULT,
    "main": RT_TABLE_MAIN,
    "local": RT_TABLE_LOCAL,
}

# Route scopes (enum rt_scope_t): smaller is wider.
SCOPES: Mapping[str, int] = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}


def table_name(table: int) -> str:
    """The name ``ip`` prints for a table id."""
    for name, number in TABLE_NAMES.items():
        if number == table and name != "unspec":
            return name
    return str(table)


@dataclass(frozen=True, slots=True)
class IfAddr:
    """One IPv4 address of an interface, as ``ip -j addr`` prints it."""

    local: int
    prefixlen: int
    scope: int = 0
    secondary: bool = False
    label: str = ""
    broadcast: int | None = None
    peer: int | None = None  # point-to-point peer address (``address`` in ip -j)
    noprefixroute: bool = False
    metric: int = 0  # IFA_RT_PRIORITY: metric of the prefix route (``metric`` in ip -j addr)

    @property
    def prefix(self) -> Prefix:
        return Prefix.from_plen(self.peer if self.peer is not None else self.local, self.prefixlen)


@dataclass(frozen=True, slots=True)
class Link:
    """A network device (``ip -j -d link`` / ``ip -j addr``)."""

    ifindex: int
    name: str
    kind: str | None = None  # linkinfo.info_kind: veth, bridge, ...
    admin_up: bool = True  # flags contain UP
    carrier: bool = True  # flags contain LOWER_UP (or it is lo)
    mtu: int = 1500
    mac: str | None = None
    master: str | None = None
    group: int = 0
    loopback: bool = False
    addrs: tuple[IfAddr, ...] = ()
    vrf_table: int | None = None  # linkinfo.info_data.table of a ``vrf`` device
    origin: SourceLoc | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class NextHop:
    gateway: int | None = None
    dev: str | None = None
    weight: int = 1
    flags: frozenset[str] = frozenset()  # onlink, dead, linkdown, pervasive


@dataclass(frozen=True, slots=True)
class Route:
    """One route of one table (``ip -j route show table all`` entry)."""

    dst: Prefix
    table: int = RT_TABLE_MAIN
    type: str = "unicast"  # unicast local broadcast multicast anycast blackhole unreachable prohibit throw nat
    tos: int = 0
    metric: int = 0
    scope: int = 0
    protocol: str | None = None
    prefsrc: int | None = None
    nexthops: tuple[NextHop, ...] = ()
    origin: SourceLoc | None = field(default=None, compare=False)

    @property
    def plen(self) -> int:
        return self.dst.plen


@dataclass(frozen=True, slots=True)
class FibRule:
    """One ``ip rule``: selectors, then an action (lookup/goto/nop/blackhole/unreachable/prohibit)."""

    priority: int
    action: str = "lookup"
    table: int | None = None
    goto: int | None = None
    invert: bool = False
    src: Prefix | None = None
    dst: Prefix | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int = 0xFFFFFFFF
    tos: int = 0
    ipproto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    uidrange: tuple[int, int] | None = None
    l3mdev: bool = False
    suppress_prefixlen: int | None = None
    suppress_ifgroup: int | None = None
    iif_detached: bool = False  # the iif device does not exist: the rule never matches on iif
    oif_detached: bool = False
    unresolved: bool = False  # goto whose target preference does not exist
    dscp: int | None = None  # ``dscp`` selector (full 6-bit DSCP match, Linux 6.13+)
    protocol: str | None = None  # who installed the rule (``proto``), informational
    origin: SourceLoc | None = field(default=None, compare=False)


DEFAULT_RULES: tuple[FibRule, ...] = (
    FibRule(priority=0, table=RT_TABLE_LOCAL),
    FibRule(priority=32766, table=RT_TABLE_MAIN),
    FibRule(priority=32767, table=RT_TABLE_DEFAULT),
)


@dataclass(frozen=True, slots=True)
class Sysctls:
    """``sysctl -a`` values (strings); absent keys take the kernel's default."""

    values: Mapping[str, str] = field(default_factory=dict)

    DEFAULTS = {
        "net.ipv4.ip_forward": "0",
        "net.ipv4.conf.all.forwarding": "0",
        "net.ipv4.conf.default.forwarding": "0",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
        "net.netfilter.nf_conntrack_tcp_loose": "1",
        "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.ipv4.conf.all.send_redirects": "1",
        "net.ipv4.conf.default.send_redirects": "1",
    }

    def get(self, key: str, default: str | None = None) -> str | None:
        if key in self.values:
            return self.values[key]
        return self.DEFAULTS.get(key, default)

    def get_int(self, key: str, default: int = 0) -> int:
        text = self.get(key)
        if text is None:
            return default
        try:
            return int(text.split()[0], 0)
        except (ValueError, IndexError):
            return default

    def conf(self, dev: str, key: str) -> int:
        """The per-device value: the device's own key, else ``default`` (what a new device inherits)."""
        own = f"net.ipv4.conf.{dev}.{key}"
        if own in self.values:
            return self.get_int(own)
        if key == "forwarding":
            # Writing ip_forward (= all.forwarding) sets every device and default.forwarding
            # (devinet_sysctl_forward), so a partial snapshot's ip_forward is each device's value.
            for k in ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.default.forwarding"):
                if k in self.values:
                    return self.get_int(k)
            return 0
        return self.get_int(f"net.ipv4.conf.default.{key}")

    def conf_or(self, dev: str, key: str) -> int:
        """``IN_DEV_ORCONF``: set when either ``all`` or the device has it."""
        return self.get_int(f"net.ipv4.conf.all.{key}") or self.conf(dev, key)

    def conf_max(self, dev: str, key: str) -> int:
        """``IN_DEV_MAXCONF``: the larger of ``all`` and the device (rp_filter)."""
        return max(self.get_int(f"net.ipv4.conf.all.{key}"), self.conf(dev, key))


@dataclass(frozen=True, slots=True)
class NetState:
    """Everything routing needs: links with their addresses, routes of all tables, rules, sysctls."""

    links: tuple[Link, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[FibRule, ...] = DEFAULT_RULES
    sysctls: Sysctls = field(default_factory=Sysctls)

    def link(self, name: str) -> Link | None:
        for link in self.links:
            if link.name == name:
                return link
        return None
