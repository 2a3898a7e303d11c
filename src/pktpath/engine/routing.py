"""The kernel's IPv4 routing decision (FIB), re-expressed from net/ipv4/*.c (Linux 6.18).

Public API (the packet walk calls these; ``pktpath route`` prints them):

* ``route_output(net, flow)`` -- ``ip_route_output_key_hash_rcu()`` (net/ipv4/route.c):
  a locally generated packet; ``flow.src == 0`` lets the kernel pick the source.
* ``route_input(net, flow)`` -- ``ip_route_input_rcu()``/``ip_route_input_slow()``: a
  packet that arrived on ``flow.iif``.
* ``inet_select_addr(net, dev, dst, scope)`` -- net/ipv4/devinet.c.
* ``masquerade_source(net, dev, nexthop)`` -- ``nf_nat_masquerade_ipv4()``'s choice.
* ``inet_addr_type(net, addr, dev=None)`` -- ``inet_addr_type_dev_table()``
  (net/ipv4/fib_frontend.c), what ``-m addrtype`` asks.

Underneath: ``fib_lookup()`` (the rule walk of net/core/fib_rules.c + net/ipv4/fib_rules.c,
or the merged main/local trie while the namespace has no custom rule) and
``fib_table_lookup()`` (net/ipv4/fib_trie.c).  Errors are carried as errno names until the
public functions turn them into the stable names of shared/spec/route-json.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

from pktpath.engine.skb import proto_name
from pktpath.model.addr import ALL_ONES, int_to_ip, plen_to_mask
from pktpath.model.net import (
    DEFAULT_RULES,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    SCOPES,
    FibRule,
    Link,
    NetState,
    NextHop,
    Route,
)
from pktpath.parse.iproute_json import table_label

RT_SCOPE_UNIVERSE = SCOPES["universe"]
RT_SCOPE_LINK = SCOPES["link"]
RT_SCOPE_HOST = SCOPES["host"]
INADDR_LOOPBACK = 0x7F000001
IPPROTO_IGMP = 2
LOOPBACK = "lo"
# Protocols whose ports the flow dissector reads (proto_ports_offset()).
_PORT_PROTOS = frozenset({6, 17, 33, 132, 136})

# fib_props[].error (net/ipv4/fib_semantics.c): route types that end a table lookup.
_ROUTE_TYPE_ERRORS = {
    "blackhole": "EINVAL", "unreachable": "EHOSTUNREACH", "prohibit": "EACCES",
    "throw": "EAGAIN", "nat": "EINVAL", "xresolve": "EINVAL",
}
# fib4_rule_action(): rule actions that end the walk.
_RULE_ACTION_ERRORS = {"unreachable": "ENETUNREACH", "prohibit": "EACCES", "blackhole": "EINVAL"}
# errno -> the stable error names of route-json.md and the ``ip route get`` message.
ERROR_NAMES = {
    "ENETUNREACH": "no-route", "EHOSTUNREACH": "unreachable", "EACCES": "prohibited",
    "EINVAL": "invalid-argument", "ENETDOWN": "network-down", "ENODEV": "no-device",
}
ERROR_MESSAGES = {
    "no-route": "Network is unreachable", "unreachable": "No route to host",
    "prohibited": "Permission denied", "blackhole": "Invalid argument",
    "invalid-argument": "Invalid argument", "network-down": "Network is down",
    "no-device": "No such device",
}


# ---------------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True)
class Flow:
    """What the routing code is asked about (``struct flowi4``)."""

    dst: int
    src: int = 0
    iif: str | None = None
    oif: str | None = None
    mark: int = 0
    tos: int = 0
    uid: int = 0
    proto: int = 0
    sport: int = 0
    dport: int = 0


@dataclass(frozen=True)
class RouteResult:
    """The kernel's answer: a route (``error`` None) or the errno it returned, with reasons."""

    error: str | None
    type: str
    dev: str | None
    gateway: int | None
    prefsrc: int | None
    table: int | None
    route: Route | None
    rule: FibRule | None
    hops: tuple[tuple[NextHop, float], ...]
    steps: tuple[str, ...]
    reason: str


# ---------------------------------------------------------------------------------------------
# Address classes (include/linux/in.h)


def is_multicast(a: int) -> bool:
    return (a & 0xF0000000) == 0xE0000000


def is_local_multicast(a: int) -> bool:
    return (a & 0xFFFFFF00) == 0xE0000000


def is_lbcast(a: int) -> bool:
    return a == ALL_ONES


def is_zeronet(a: int) -> bool:
    """``ipv4_is_zeronet()``: only 0.0.0.0 since Linux 5.3 ("Allow 0.0.0.0/8 as a valid
    address range"); 0.x.y.z is ordinary unicast."""
    return a == 0


def is_loopback(a: int) -> bool:
    return (a & 0xFF000000) == 0x7F000000


def _dscp_match(selector_tos: int, flow_tos: int) -> bool:
    """``fib_dscp_masked_match()``: a route/rule TOS compares the legacy TOS bits only."""
    return (selector_tos >> 2) == ((flow_tos >> 2) & 0x07)


# ---------------------------------------------------------------------------------------------
# Namespace-wide facts


def has_custom_rules(net: NetState) -> bool:
    """``net->ipv4.fib_has_custom_rules``: any rule beyond the three defaults."""
    return _index(net).custom_rules


def has_custom_local_routes(net: NetState) -> bool:
    """``fib_has_custom_local_routes``: a ``local`` route that the kernel did not add itself."""
    return _index(net).custom_local_routes


def rules_require_flow_dissect(net: NetState) -> bool:
    """``fib_rules_require_fldissect``: a rule on ipproto/ports that is not ``iif lo``."""
    return _index(net).flow_dissect


def _link(net: NetState, name: str | None) -> Link | None:
    return _index(net).links.get(name) if name else None


def _link_is_vrf(link: Link | None) -> bool:
    return link is not None and link.kind == "vrf"


def _l3mdev_master(net: NetState, link: Link | None) -> Link | None:
    """``l3mdev_master_dev_rcu()``: the VRF a device is enslaved to (or the VRF itself)."""
    if link is None:
        return None
    if _link_is_vrf(link):
        return link
    master = _link(net, link.master)
    return master if _link_is_vrf(master) else None


# ---------------------------------------------------------------------------------------------
# fib_table_lookup (net/ipv4/fib_trie.c)


@dataclass(frozen=True)
class _TableResult:
    """``fib_table_lookup()``'s answer: errno (``EAGAIN`` = no route) or a route + nexthop."""

    error: str | None
    route: Route | None = None
    hop: int = 0


_MISS = _TableResult("EAGAIN")


class _FibIndex:
    """Per-namespace facts and the routes of each table as the trie yields them: buckets by
    prefix length (longest first) and network; inside a bucket (one trie leaf) higher table
    id first (merged main/local), then TOS descending, then metric, then dump order."""

    def __init__(self, net: NetState) -> None:
        self.net = net
        self.links = {link.name: link for link in net.links}
        self.custom_rules = tuple(net.rules) != DEFAULT_RULES
        self.custom_local_routes = any(r.type == "local" and r.protocol != "kernel" for r in net.routes)
        self.flow_dissect = any((r.ipproto or _range_set(r.sport) or _range_set(r.dport)) and r.iif != LOOPBACK
                                for r in net.rules)
        self.local_addrs = frozenset(ifa.local for link in net.links for ifa in link.addrs)
        self.addr_types: dict[tuple[int, str | None], str] = {}  # inet_addr_type() answers
        self._tables: dict[tuple[int, ...], list[tuple[int, dict[int, list[Route]]]]] = {}

    def candidates(self, tables: tuple[int, ...], dst: int) -> Iterator[Route]:
        """Routes of ``tables`` whose prefix covers ``dst``, in lookup order."""
        for plen, buckets in self._buckets(tables):
            yield from buckets.get(dst & plen_to_mask(plen), ())

    def _buckets(self, tables: tuple[int, ...]) -> list[tuple[int, dict[int, list[Route]]]]:
        if tables not in self._tables:
            by_plen: dict[int, dict[int, list[Route]]] = {}
            for route in self.net.routes:
                if route.table in tables:
                    by_plen.setdefault(route.plen, {}).setdefault(route.dst.addr, []).append(route)
            for buckets in by_plen.values():
                for routes in buckets.values():
                    routes.sort(key=lambda r: (-r.table, -r.tos, r.metric))
            self._tables[tables] = sorted(by_plen.items(), key=lambda item: -item[0])
        return self._tables[tables]


_INDEX_CACHE: list[_FibIndex] = []


def _index(net: NetState) -> _FibIndex:
    for idx in _INDEX_CACHE:
        if idx.net is net:
            return idx
    idx = _FibIndex(net)
    _INDEX_CACHE.insert(0, idx)
    del _INDEX_CACHE[8:]
    return idx


def _ignore_linkdown(net: NetState, dev: str | None) -> bool:
    """``ip_ignore_linkdown()``: ``ignore_routes_with_linkdown`` on the nexthop's device."""
    return dev is not None and bool(net.sysctls.conf_or(dev, "ignore_routes_with_linkdown"))


def hop_is_dead(net: NetState, route: Route, hop: NextHop) -> bool:
    """RTNH_F_DEAD, or a device that is admin-down (the kernel marks those hops dead;
    host-scope routes keep theirs, as ``fib_sync_down_dev()`` skips them)."""
    if "dead" in hop.flags:
        return True
    link = _link(net, hop.dev)
    return link is not None and not link.admin_up and route.scope < RT_SCOPE_HOST


def hop_is_live(net: NetState, route: Route, hop: NextHop, ignore_linkstate: bool = False) -> bool:
    """Not dead, and not linkdown on a device with ``ignore_routes_with_linkdown``."""
    if hop_is_dead(net, route, hop):
        return False
    return ignore_linkstate or not ("linkdown" in hop.flags and _ignore_linkdown(net, hop.dev))


def _good_hop(net: NetState, route: Route, hop: NextHop, flow: Flow, ignore_linkstate: bool) -> bool:
    """``fib_lookup_good_nhc()``."""
    if not hop_is_live(net, route, hop, ignore_linkstate):
        return False
    return not (flow.oif and flow.oif != hop.dev)


def fib_table_lookup(net: NetState, tables: tuple[int, ...], flow: Flow, scope: int = 0,
                     ignore_linkstate: bool = False) -> _TableResult:
    """``fib_table_lookup()`` on one table (or the merged main+local trie)."""
    for route in _index(net).candidates(tables, flow.dst):
        if route.tos and not _dscp_match(route.tos, flow.tos):
            continue
        if route.scope < scope:
            continue
        err = _ROUTE_TYPE_ERRORS.get(route.type)
        if err is not None:
            return _TableResult(err, route)
        if route.nexthops and all(hop_is_dead(net, route, h) for h in route.nexthops):
            continue
        if not route.nexthops:
            return _TableResult(None, route, 0)
        for i, hop in enumerate(route.nexthops):
            if _good_hop(net, route, hop, flow, ignore_linkstate):
                return _TableResult(None, route, i)
    return _MISS


# ---------------------------------------------------------------------------------------------
# fib_lookup: rules (net/core/fib_rules.c, net/ipv4/fib_rules.c)


@dataclass(frozen=True)
class FibResult:
    """``struct fib_result`` plus the rule that decided and the reasoning."""

    error: str | None  # errno name; EINVAL from a blackhole route/rule is "EINVAL:blackhole"
    route: Route | None
    hop: int
    table: int | None
    rule: FibRule | None
    steps: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        return self.route.type if self.route is not None else "unicast"


def _range_set(r: tuple[int, int] | None) -> bool:
    """``fib_rule_port_range_set()``."""
    return r is not None and r[0] != 0 and r[1] != 0


def _in_range(r: tuple[int, int] | None, value: int) -> bool:
    return r is None or not _range_set(r) or r[0] <= value <= r[1]


def _l3mdev_table(net: NetState, flow: Flow) -> int | None:
    """``l3mdev_fib_rule_match()``: the VRF table of the flow's iif or oif, if any."""
    for name in (flow.iif, flow.oif):
        master = _l3mdev_master(net, _link(net, name))
        if master is not None and master.vrf_table is not None:
            return master.vrf_table
    return None


def _rule_selectors_match(net: NetState, rule: FibRule, flow: Flow) -> bool:
    """``fib_rule_match()`` + ``fib4_rule_match()`` before the ``not`` inversion."""
    if rule.iif and (rule.iif_detached or rule.iif != flow.iif):
        return False
    if rule.oif and (rule.oif_detached or rule.oif != flow.oif):
        return False
    if rule.fwmark is not None and (rule.fwmark ^ flow.mark) & rule.fwmask:
        return False
    if rule.l3mdev and _l3mdev_table(net, flow) is None:
        return False
    if rule.uidrange is not None and not rule.uidrange[0] <= flow.uid <= rule.uidrange[1]:
        return False
    if rule.src is not None and not rule.src.contains(flow.src):
        return False
    if rule.dst is not None and not rule.dst.contains(flow.dst):
        return False
    return _rule_l4_match(rule, flow)


def _rule_l4_match(rule: FibRule, flow: Flow) -> bool:
    if rule.dscp is not None:
        if (rule.dscp ^ (flow.tos >> 2)) & 0x3F:
            return False
    elif rule.tos and not _dscp_match(rule.tos, flow.tos):
        return False
    if rule.ipproto and rule.ipproto != flow.proto:
        return False
    return _in_range(rule.sport, flow.sport) and _in_range(rule.dport, flow.dport)


def rule_matches(net: NetState, rule: FibRule, flow: Flow) -> bool:
    """``fib_rule_match()``: the selectors, inverted by ``not``."""
    return _rule_selectors_match(net, rule, flow) != rule.invert


def _goto_target(rules: tuple[FibRule, ...], rule: FibRule) -> int | None:
    """``rule->ctarget``: the first rule with the goto's preference (None if unresolved)."""
    if rule.unresolved or rule.goto is None:
        return None
    for i, other in enumerate(rules):
        if other.priority == rule.goto:
            return i
    return None


def _suppressed(net: NetState, rule: FibRule, res: _TableResult) -> str | None:
    """``fib4_rule_suppress()``: why the table's answer is ignored, or None."""
    assert res.route is not None
    if rule.suppress_prefixlen is not None and res.route.plen <= rule.suppress_prefixlen:
        return f"prefix length /{res.route.plen} <= suppress_prefixlength {rule.suppress_prefixlen}"
    if rule.suppress_ifgroup is not None and res.route.nexthops:
        link = _link(net, res.route.nexthops[0].dev)
        if link is not None and link.group == rule.suppress_ifgroup:
            return f"device {link.name} is in suppress_ifgroup {rule.suppress_ifgroup}"
    return None


def _rule_table(net: NetState, rule: FibRule, flow: Flow) -> int:
    """``fib_rule_get_table()``."""
    if rule.l3mdev:
        table = _l3mdev_table(net, flow)
        if table is not None:
            return table
    return rule.table if rule.table else RT_TABLE_MAIN


def _rules_walk(net: NetState, flow: Flow, scope: int, ignore_linkstate: bool) -> FibResult:
    """``fib_rules_lookup()`` + ``fib4_rule_action()`` + ``__fib_lookup()``."""
    rules = tuple(net.rules)
    steps: list[str] = []
    i = 0
    while i < len(rules):
        rule = rules[i]
        if not rule_matches(net, rule, flow):
            steps.append(f"rule {format_rule(rule)}: does not match")
            i += 1
            continue
        outcome = _rule_action(net, rule, flow, scope, ignore_linkstate, steps)
        if outcome == "goto":
            target = _goto_target(rules, rule)
            if target is None:
                steps.append(f"rule {format_rule(rule)}: goto target missing, continue")
                i += 1
            else:
                steps.append(f"rule {format_rule(rule)}: jump to rule {rules[target].priority}")
                i = target
            continue
        if isinstance(outcome, FibResult):
            return replace(outcome, steps=tuple(steps))
        i += 1
    steps.append("no rule gave an answer (ESRCH -> Network is unreachable)")
    return FibResult("ENETUNREACH", None, 0, None, None, tuple(steps))


def _rule_action(net: NetState, rule: FibRule, flow: Flow, scope: int, ignore_linkstate: bool,
                 steps: list[str]) -> FibResult | str | None:
    """One matching rule: a final result, ``"goto"``, or None to continue the walk."""
    if rule.action == "goto":
        return "goto"
    if rule.action == "nop":
        steps.append(f"rule {format_rule(rule)}: nop, continue")
        return None
    if rule.action in _RULE_ACTION_ERRORS:
        err = _RULE_ACTION_ERRORS[rule.action]
        steps.append(f"rule {format_rule(rule)}: action {rule.action} -> {err}")
        return FibResult(err + (":blackhole" if rule.action == "blackhole" else ""), None, 0, None, rule)
    table = _rule_table(net, rule, flow)
    res = fib_table_lookup(net, (table,), flow, scope, ignore_linkstate)
    where = f"rule {format_rule(rule)}: table {table_label(table)}"
    if res.error == "EAGAIN":
        why = "throw route " + format_route(res.route) if res.route else "no matching route"
        steps.append(f"{where}: {why}, continue")
        return None
    if res.error is None:
        suppressed = _suppressed(net, rule, res)
        if suppressed:
            steps.append(f"{where}: {format_route(res.route)} suppressed ({suppressed}), continue")
            return None
    return _table_answer(res, table, rule, where, steps)


def _table_answer(res: _TableResult, table: int, rule: FibRule | None, where: str,
                  steps: list[str]) -> FibResult:
    route_text = format_route(res.route) if res.route else "?"
    if res.error is not None:
        steps.append(f"{where}: {route_text} -> {res.error}")
        err = res.error + (":blackhole" if res.route is not None and res.route.type == "blackhole" else "")
        return FibResult(err, res.route, 0, table, rule)
    steps.append(f"{where}: matched {route_text}")
    return FibResult(None, res.route, res.hop, table, rule)


def _merged_lookup(net: NetState, flow: Flow, scope: int, ignore_linkstate: bool) -> FibResult:
    """``fib_lookup()`` without custom rules: the merged main/local trie, then ``default``."""
    steps: list[str] = ["no custom ip rules: main and local tables merged, then default"]
    res = fib_table_lookup(net, (RT_TABLE_MAIN, RT_TABLE_LOCAL), flow, scope, ignore_linkstate)
    if res.error == "EAGAIN":
        steps.append("table main (with local): no matching route")
        res = fib_table_lookup(net, (RT_TABLE_DEFAULT,), flow, scope, ignore_linkstate)
        if res.error == "EAGAIN":
            steps.append("table default: no matching route (Network is unreachable)")
            return FibResult("ENETUNREACH", None, 0, None, None, tuple(steps))
        out = _table_answer(res, RT_TABLE_DEFAULT, None, "table default", steps)
    else:
        out = _table_answer(res, RT_TABLE_MAIN, None, "table main (with local)", steps)
    return replace(out, steps=tuple(steps))


def fib_lookup(net: NetState, flow: Flow, scope: int = 0, ignore_linkstate: bool = False) -> FibResult:
    """``fib_lookup()`` (include/net/ip_fib.h): ``EAGAIN``/``ESRCH`` come out as ENETUNREACH."""
    if not has_custom_rules(net):
        return _merged_lookup(net, flow, scope, ignore_linkstate)
    return _rules_walk(net, flow, scope, ignore_linkstate)


def _local_tables(net: NetState) -> tuple[int, ...]:
    """The local table: while tables are merged it shares main's trie."""
    return (RT_TABLE_LOCAL,) if has_custom_rules(net) else (RT_TABLE_MAIN, RT_TABLE_LOCAL)


def _local_table_lookup(net: NetState, addr: int) -> _TableResult:
    """A lookup in the local table (which shares main's trie while tables are merged)."""
    return fib_table_lookup(net, _local_tables(net), Flow(dst=addr))


# ---------------------------------------------------------------------------------------------
# Source address selection (net/ipv4/devinet.c, fib_semantics.c)


def _in_dev_select_addr(link: Link, scope: int) -> int:
    """``in_dev_select_addr()``: first primary address, not link scope, scope <= ``scope``."""
    for ifa in link.addrs:
        if not ifa.secondary and ifa.scope != RT_SCOPE_LINK and ifa.scope <= scope:
            return ifa.local
    return 0


def _dev_select_addr(net: NetState, link: Link, dst: int, scope: int) -> int:
    """The loop of ``inet_select_addr()`` over the device's own addresses."""
    localnet_scope = RT_SCOPE_LINK if net.sysctls.conf_or(link.name, "route_localnet") else RT_SCOPE_HOST
    addr = 0
    for ifa in link.addrs:
        if ifa.secondary or min(ifa.scope, localnet_scope) > scope:
            continue
        if not dst or ifa.prefix.contains(dst):
            return ifa.local
        if not addr:
            addr = ifa.local
    return addr


def _master_name(net: NetState, link: Link | None) -> str | None:
    master = _l3mdev_master(net, link)
    return master.name if master is not None else None


def inet_select_addr(net: NetState, dev: str | None, dst: int, scope: int) -> int:
    """``inet_select_addr()``: a primary address of ``dev`` (preferring ``dst``'s subnet),
    else of its VRF master, else the first suitable one of any device in the same L3
    domain, in device order (``lo`` first)."""
    link = _link(net, dev)
    if link is not None:
        addr = _dev_select_addr(net, link, dst, scope)
        if addr:
            return addr
    master = _l3mdev_master(net, link)
    if master is not None:
        addr = _in_dev_select_addr(master, scope)
        if addr:
            return addr
    domain = master.name if master is not None else None
    for other in sorted(net.links, key=lambda lk: lk.ifindex):
        if _master_name(net, other) != domain:
            continue
        addr = _in_dev_select_addr(other, scope)
        if addr:
            return addr
    return 0


def masquerade_source(net: NetState, dev: str, nexthop: int) -> int | None:
    """``nf_nat_masquerade_ipv4()``: ``inet_select_addr(out, nexthop, RT_SCOPE_UNIVERSE)``;
    None when no address qualifies (the kernel drops: "... ate my IP address")."""
    return inet_select_addr(net, dev, nexthop, RT_SCOPE_UNIVERSE) or None


def fib_result_prefsrc(net: NetState, route: Route, hop: NextHop | None) -> int:
    """``fib_result_prefsrc()``: the route's ``src``, else ``inet_select_addr(nh dev, nh gw,
    route scope)`` (``fib_info_update_nhc_saddr()``)."""
    if route.prefsrc:
        return route.prefsrc
    if hop is None:
        return 0
    return inet_select_addr(net, hop.dev, hop.gateway or 0, route.scope)


# ---------------------------------------------------------------------------------------------
# inet_addr_type


def inet_addr_type(net: NetState, addr: int, dev: str | None = None) -> str:
    """``inet_addr_type_dev_table()``: the type of the local-table (or VRF table) route for
    ``addr``; with ``dev``, only a route whose first nexthop uses ``dev`` counts.  A pure
    function of the namespace: remembered per namespace (``-m addrtype`` asks per packet)."""
    memo = _index(net).addr_types
    key = (addr, dev)
    answer = memo.get(key)
    if answer is None:
        if len(memo) >= 4096:
            memo.clear()
        answer = memo[key] = _inet_addr_type(net, addr, dev)
    return answer


def _inet_addr_type(net: NetState, addr: int, dev: str | None) -> str:
    if is_zeronet(addr) or is_lbcast(addr):
        return "BROADCAST"
    if is_multicast(addr):
        return "MULTICAST"
    master = _l3mdev_master(net, _link(net, dev))
    if master is not None and master.vrf_table is not None:
        res = fib_table_lookup(net, (master.vrf_table,), Flow(dst=addr))
    elif not any(r.table == RT_TABLE_LOCAL for r in net.routes):
        return "UNICAST"  # no local table: fib_get_table() fails
    else:
        res = _local_table_lookup(net, addr)
    if res.error is not None or res.route is None:
        return "UNICAST"
    first = res.route.nexthops[0].dev if res.route.nexthops else None
    if dev is None or dev == first:
        return res.route.type.upper()
    return "UNICAST"


def is_local_address(net: NetState, addr: int) -> Link | None:
    """``__ip_dev_find()``: the device holding ``addr``, else a ``local`` route's device."""
    if addr in _index(net).local_addrs:
        for link in net.links:
            if any(ifa.local == addr for ifa in link.addrs):
                return link
    res = _local_table_lookup(net, addr)
    if res.error is None and res.route is not None and res.route.type == "local":
        dev = res.route.nexthops[0].dev if res.route.nexthops else LOOPBACK
        return _link(net, dev or LOOPBACK) or Link(ifindex=0, name=dev or LOOPBACK)
    return None


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class _Answer:
    """What ``rt_fill_info()`` reports, assembled while a route is being made."""

    steps: list[str] = field(default_factory=list)
    rule: FibRule | None = None
    route: Route | None = None
    table: int | None = None

    def fail(self, error: str, reason: str) -> RouteResult:
        self.steps.append(reason)
        rtype = self.route.type if self.route is not None else "unspec"
        return RouteResult(error=error, type=rtype, dev=None, gateway=None, prefsrc=None,
                           table=self.table, route=self.route, rule=self.rule, hops=(),
                           steps=tuple(self.steps), reason=reason)

    def ok(self, rtype: str, dev: str | None, gateway: int | None, prefsrc: int | None,
           hops: tuple[tuple[NextHop, float], ...], reason: str) -> RouteResult:
        self.steps.append(reason)
        return RouteResult(error=None, type=rtype, dev=dev, gateway=gateway, prefsrc=prefsrc,
                           table=self.table, route=self.route, rule=self.rule, hops=hops,
                           steps=tuple(self.steps), reason=reason)

    def absorb(self, res: FibResult) -> None:
        self.steps.extend(res.steps)
        self.rule, self.route, self.table = res.rule, res.route, res.table


def _errno_error(err: str) -> str:
    """errno name (``EINVAL:blackhole`` for a blackhole) -> the route-json.md error name."""
    if err == "EINVAL:blackhole":
        return "blackhole"
    return ERROR_NAMES.get(err.split(":")[0], "invalid-argument")


def live_hops(net: NetState, route: Route) -> tuple[tuple[NextHop, float], ...]:
    """``fib_rebalance()``: the hops a multipath hash can pick, with their probability."""
    live = [h for h in route.nexthops if hop_is_live(net, route, h)]
    total = sum(max(h.weight, 1) for h in live)
    return tuple((h, max(h.weight, 1) / total) for h in live)


def _select_hop(net: NetState, res: FibResult, oif: str | None) -> tuple[NextHop | None,
                                                                          tuple[tuple[NextHop, float], ...]]:
    """``fib_select_path()``/``fib_select_multipath()``: the hop reported (the first one the
    hash can pick) and every hop the hash can pick.  With an oif the lookup's hop stays."""
    route = res.route
    if route is None or not route.nexthops:
        return None, ()
    found = route.nexthops[res.hop]
    if oif or len(route.nexthops) == 1:
        return found, ((found, 1.0),)
    hops = live_hops(net, route)
    return (hops[0][0] if hops else found), (hops or ((found, 1.0),))


def _uses_gateway(net: NetState, hop: NextHop | None, table: int | None = None) -> int | None:
    """``rt_set_nexthop()``: the gateway is used only when the nexthop's scope is link.

    ``fib_check_nh_v4_gw()`` gives an ``onlink`` hop scope link, any other the scope of the
    route its gateway resolves to: looked up (scope link or wider, link state ignored, iif
    lo, oif the hop's device) in the route's own table unless that is main, else, or when
    that fails, through the ip rules.  A gateway behind a ``local`` route (one of our
    addresses) or a scope-host route is therefore never used.  The kernel decides this when
    the route is added; a snapshot shows the routes and rules as they are now."""
    if hop is None or not hop.gateway:
        return None
    if "onlink" in hop.flags:
        return hop.gateway
    flow = Flow(dst=hop.gateway, oif=hop.dev, iif=LOOPBACK)
    route = None
    if table is not None and table != RT_TABLE_MAIN:
        found = fib_table_lookup(net, (table,), flow, scope=RT_SCOPE_LINK, ignore_linkstate=True)
        route = found.route if found.error is None else None
    if route is None:
        res = fib_lookup(net, flow, scope=RT_SCOPE_LINK, ignore_linkstate=True)
        route = res.route if res.error is None else None
    if route is None:
        return hop.gateway  # the kernel would have refused such a route: keep what the dump shows
    return hop.gateway if route.scope == RT_SCOPE_LINK and route.type in ("unicast", "local") else None


# ---------------------------------------------------------------------------------------------
# Output: ip_route_output_key_hash_rcu (net/ipv4/route.c)


@dataclass
class _OutState:
    """The mutable ``flowi4`` and result of one output lookup."""

    flow: Flow
    saddr: int
    daddr: int
    dev_out: str | None = None
    rtype: str = "unspec"
    hop: NextHop | None = None
    hops: tuple[tuple[NextHop, float], ...] = ()
    table: int | None = None  # the table of the route that matched (for its gateway's scope)
    prefix_len: int = 32
    made: bool = False  # ``goto make_route``: skip the remaining stages

    def make(self, dev: str, rtype: str = "unspec") -> None:
        self.dev_out, self.rtype, self.hop, self.made = dev, rtype, NextHop(dev=dev), True


def route_output(net: NetState, flow: Flow) -> RouteResult:
    """``ip_route_output_key_hash_rcu()``: route a packet a local socket sends.

    The flow's iif is ``lo`` for the rules (``LOOPBACK_IFINDEX``); ``flow.src == 0`` lets
    the kernel choose the source (``RouteResult.prefsrc``)."""
    ans = _Answer()
    st = _OutState(flow=replace(flow, iif=LOOPBACK), saddr=flow.src, daddr=flow.dst)
    for stage in (_output_check_source, _output_oif, _output_lookup):
        early = stage(net, st, ans)
        if early is not None:
            return early
        if st.made:
            break
    return _mkroute_output(net, st, ans)


def _output_check_source(net: NetState, st: _OutState, ans: _Answer) -> RouteResult | None:
    """The ``if (fl4->saddr)`` block: martian sources, the multicast/broadcast ``saddr`` hack,
    and a source that must be one of ours."""
    if not st.saddr:
        return None
    if is_multicast(st.saddr) or is_lbcast(st.saddr) or is_zeronet(st.saddr):
        return ans.fail("invalid-argument", f"source {int_to_ip(st.saddr)} is not a unicast address")
    dev = is_local_address(net, st.saddr)
    if dev is None:
        return ans.fail("no-route", f"source {int_to_ip(st.saddr)} is not a local address "
                        "(__ip_dev_find fails: Network is unreachable)")
    if not st.flow.oif and (is_multicast(st.daddr) or is_lbcast(st.daddr)):
        ans.steps.append(f"multicast/broadcast from local {int_to_ip(st.saddr)}: out via {dev.name} "
                         "without a route lookup")
        st.flow = replace(st.flow, oif=dev.name)
        st.make(dev.name)
    return None


def _output_oif(net: NetState, st: _OutState, ans: _Answer) -> RouteResult | None:
    """The ``if (fl4->flowi4_oif)`` block and the ``!fl4->daddr`` loopback case."""
    if st.flow.oif:
        link = _link(net, st.flow.oif)
        if link is None:
            return ans.fail("no-device", f"no device {st.flow.oif}")
        if not link.admin_up:
            return ans.fail("no-route", f"oif {link.name} is down (Network is unreachable)")
        if is_local_multicast(st.daddr) or is_lbcast(st.daddr) or st.flow.proto == IPPROTO_IGMP:
            st.saddr = st.saddr or inet_select_addr(net, link.name, 0, RT_SCOPE_LINK)
            ans.steps.append(f"link-local multicast/broadcast/IGMP with oif: out via {link.name}")
            st.make(link.name)
            return None
        if not st.saddr and is_multicast(st.daddr):
            st.saddr = inet_select_addr(net, link.name, 0, RT_SCOPE_UNIVERSE)
        elif not st.saddr and not st.daddr:
            st.saddr = inet_select_addr(net, link.name, 0, RT_SCOPE_HOST)
    if not st.daddr:
        st.daddr = st.saddr or INADDR_LOOPBACK
        st.saddr = st.saddr or INADDR_LOOPBACK
        st.flow = replace(st.flow, oif=LOOPBACK)
        ans.steps.append(f"destination 0.0.0.0: local delivery to {int_to_ip(st.daddr)} via lo")
        st.make(LOOPBACK, "local")
    return None


def _output_lookup(net: NetState, st: _OutState, ans: _Answer) -> RouteResult | None:
    """``fib_lookup()`` and what follows it: the oif on-link fallback, local routes,
    ``fib_select_path()``."""
    res = fib_lookup(net, replace(st.flow, src=st.saddr, dst=st.daddr))
    ans.absorb(res)
    if res.error is not None:
        if st.flow.oif:
            ans.rule = ans.route = None
            ans.table = None
            st.saddr = st.saddr or inet_select_addr(net, st.flow.oif, 0, RT_SCOPE_LINK)
            ans.steps.append(f"lookup failed ({res.error.split(':')[0]}) but oif {st.flow.oif} given: "
                             "assume the destination is on-link")
            st.make(st.flow.oif, "unicast")
            return None
        return ans.fail(_errno_error(res.error), _lookup_failure_text(res))
    assert res.route is not None
    st.rtype, st.prefix_len, st.table = res.route.type, res.route.plen, res.route.table
    if res.route.type == "local":
        hop = res.route.nexthops[res.hop] if res.route.nexthops else None
        st.saddr = st.saddr or res.route.prefsrc or st.daddr
        master = _l3mdev_master(net, _link(net, hop.dev) if hop else None)
        st.make(master.name if master else LOOPBACK, "local")
        return None
    st.hop, st.hops = _select_hop(net, res, st.flow.oif)
    if not st.saddr:
        st.saddr = fib_result_prefsrc(net, res.route, st.hop)
    st.dev_out = st.hop.dev if st.hop else None
    st.made = True
    return None


def _lookup_failure_text(res: FibResult) -> str:
    err = res.error or ""
    if err.startswith("EINVAL"):
        return "blackhole: Invalid argument"
    return {"ENETUNREACH": "no route: Network is unreachable",
            "EHOSTUNREACH": "unreachable route: No route to host",
            "EACCES": "prohibit: Permission denied"}.get(err, err)


def _mkroute_output(net: NetState, st: _OutState, ans: _Answer) -> RouteResult:
    """``__mkroute_output()``: the route type from the destination, gateway use."""
    dev_out = st.dev_out or LOOPBACK
    out_link = _link(net, dev_out)
    out_loopback = out_link.loopback if out_link is not None else dev_out == LOOPBACK
    localnet = net.sysctls.conf_or(dev_out, "route_localnet")
    if is_loopback(st.saddr) and not localnet and not out_loopback and not _link_is_vrf(out_link):
        return ans.fail("invalid-argument", f"loopback source {int_to_ip(st.saddr)} cannot leave "
                        f"via {dev_out} (route_localnet off)")
    rtype, hop = st.rtype, st.hop
    if is_lbcast(st.daddr):
        rtype, hop = "broadcast", None
    elif is_multicast(st.daddr):
        rtype = "multicast"
        if st.prefix_len < 4:
            hop = None
    elif is_zeronet(st.daddr):
        return ans.fail("invalid-argument", "destination 0.0.0.0")
    if rtype == "broadcast":
        hop = None
    gateway = _uses_gateway(net, hop, st.table)
    hops = st.hops or ((NextHop(dev=dev_out), 1.0),)
    via = f" via {int_to_ip(gateway)}" if gateway else ""
    src = f", source {int_to_ip(st.saddr)}" if st.saddr else ""
    return ans.ok(rtype, dev_out, gateway, st.saddr or None, hops,
                  f"{rtype}{via} dev {dev_out}{src}")


# ---------------------------------------------------------------------------------------------
# Input: ip_route_input_rcu / ip_route_input_slow (net/ipv4/route.c)


def _input_flow(net: NetState, flow: Flow) -> Flow:
    """The flowi4 ``ip_route_input_slow()`` builds: uid 0 (``sock_net_uid(net, NULL)``), and
    protocol/ports only when some rule needs the flow dissector."""
    if not rules_require_flow_dissect(net):
        return replace(flow, oif=None, uid=0, proto=0, sport=0, dport=0)
    if flow.proto not in _PORT_PROTOS:
        return replace(flow, oif=None, uid=0, sport=0, dport=0)
    return replace(flow, oif=None, uid=0)


def route_input(net: NetState, flow: Flow) -> RouteResult:
    """``ip_route_input_rcu()``: route a packet that arrived on ``flow.iif`` from ``flow.src``."""
    ans = _Answer()
    link = _link(net, flow.iif)
    if link is None:
        return ans.fail("no-device", f"no device {flow.iif}")
    flow = _input_flow(net, flow)
    if is_multicast(flow.dst):
        return _input_multicast(net, link, flow, ans)
    martian = _input_martian(net, link, flow)
    if martian == "broadcast":
        return _broadcast_input(net, link, flow, ans)
    if martian:
        return ans.fail("invalid-argument", martian)
    return _input_routed(net, link, flow, ans)


K = TypeVar("K")


class RouteMemo:
    """``route_input()`` / ``route_output()`` answers for one namespace, by the flow they
    depend on.  Both are pure functions of the namespace (fixed for the life of the engine
    that owns the memo) and of the flow, and a ``RouteResult`` is immutable, so one answer
    serves every packet with the same flow.  An input lookup is keyed by the flow
    ``ip_route_input_slow()`` builds (``_input_flow``): protocol and ports count only when
    some rule needs the flow dissector, so packets that differ only in their source port
    share one answer."""

    LIMIT = 4096

    def __init__(self, net: NetState) -> None:
        self.net = net
        self.dissect = rules_require_flow_dissect(net)
        self._input: dict[tuple[int, int, str, int, int, int, int, int], RouteResult] = {}
        self._output: dict[tuple[int, int, int, int, int, int, int, int], RouteResult] = {}

    def route_input(self, dst: int, src: int, iif: str, mark: int, tos: int, proto: int, sport: int,
                    dport: int) -> RouteResult:
        """``route_input(net, Flow(dst=dst, src=src, iif=iif, mark=mark, tos=tos, proto=proto,
        sport=sport, dport=dport))``."""
        if not self.dissect:
            proto = sport = dport = 0
        elif proto not in _PORT_PROTOS:
            sport = dport = 0
        key = (dst, src, iif, mark, tos, proto, sport, dport)
        res = self._input.get(key)
        if res is not None:
            return res
        return self._keep(self._input, key, route_input(self.net, Flow(
            dst=dst, src=src, iif=iif, mark=mark, tos=tos, proto=proto, sport=sport, dport=dport)))

    def route_output(self, dst: int, src: int, mark: int, tos: int, uid: int, proto: int, sport: int,
                     dport: int) -> RouteResult:
        """``route_output(net, Flow(dst=dst, src=src, mark=mark, tos=tos, uid=uid, proto=proto,
        sport=sport, dport=dport))``."""
        key = (dst, src, mark, tos, uid, proto, sport, dport)
        res = self._output.get(key)
        if res is not None:
            return res
        return self._keep(self._output, key, route_output(self.net, Flow(
            dst=dst, src=src, mark=mark, tos=tos, uid=uid, proto=proto, sport=sport, dport=dport)))

    def _keep(self, memo: dict[K, RouteResult], key: K, res: RouteResult) -> RouteResult:
        if len(memo) >= self.LIMIT:
            memo.clear()  # (a batch of random packets must not grow it without bound)
        memo[key] = res
        return res


def _input_martian(net: NetState, link: Link, flow: Flow) -> str | None:
    """The martian checks at the top of ``ip_route_input_slow()``; "broadcast" for brd_input."""
    src, dst = flow.src, flow.dst
    if is_multicast(src) or is_lbcast(src):
        return f"martian source {int_to_ip(src)} (multicast/broadcast)"
    if is_lbcast(dst) or (src == 0 and dst == 0):
        return "broadcast"
    if is_zeronet(src):
        return "martian source 0.0.0.0"
    if is_zeronet(dst):
        return "martian destination 0.0.0.0"
    localnet = net.sysctls.conf_or(link.name, "route_localnet")
    if is_loopback(dst) and not localnet:
        return f"martian destination {int_to_ip(dst)} (127.0.0.0/8 without route_localnet)"
    if not is_loopback(dst) and is_loopback(src) and not localnet:
        return f"martian source {int_to_ip(src)} (127.0.0.0/8 without route_localnet)"
    return None


def _input_routed(net: NetState, link: Link, flow: Flow, ans: _Answer) -> RouteResult:
    """``fib_lookup()`` and the type switch of ``ip_route_input_slow()``."""
    forwarding = bool(net.sysctls.conf(link.name, "forwarding"))
    res = fib_lookup(net, flow)
    ans.absorb(res)
    if res.error is not None:
        if not forwarding:
            return ans.fail("unreachable", f"{_lookup_failure_text(res)}; forwarding is off on "
                            f"{link.name}: No route to host")
        return ans.fail(_errno_error(res.error), _lookup_failure_text(res))
    assert res.route is not None
    if res.route.type == "broadcast":
        if net.sysctls.get_int("net.ipv4.conf.all.bc_forwarding") and net.sysctls.conf(
                link.name, "bc_forwarding"):
            return _mkroute_input(net, link, flow, res, ans)
        return _broadcast_input(net, link, flow, ans, from_fib=True)
    if res.route.type == "local":
        bad = fib_validate_source(net, flow, link, None, ans.steps)
        if bad:
            return ans.fail("invalid-argument", bad)
        return ans.ok("local", _local_dev(net, res), None, None, ((NextHop(dev=LOOPBACK), 1.0),),
                      f"local delivery of {int_to_ip(flow.dst)} (arrived on {link.name})")
    if not forwarding:
        return ans.fail("unreachable", f"forwarding is off on {link.name}: No route to host")
    if res.route.type != "unicast":
        return ans.fail("invalid-argument", f"martian destination: route type {res.route.type}")
    return _mkroute_input(net, link, flow, res, ans)


def _local_dev(net: NetState, res: FibResult) -> str:
    """``ip_rt_get_dev()``: the VRF device, else ``lo``."""
    hop = res.route.nexthops[res.hop] if res.route and res.route.nexthops else None
    master = _l3mdev_master(net, _link(net, hop.dev) if hop else None)
    return master.name if master else LOOPBACK


def _broadcast_input(net: NetState, link: Link, flow: Flow, ans: _Answer,
                     from_fib: bool = False) -> RouteResult:
    """``brd_input``: the source is validated unless it is 0.0.0.0."""
    if not from_fib:
        ans.table = None
    if flow.src:
        bad = fib_validate_source(net, replace(flow, dst=0), link, None, ans.steps)
        if bad:
            return ans.fail("invalid-argument", bad)
    return ans.ok("broadcast", LOOPBACK, None, None, ((NextHop(dev=LOOPBACK), 1.0),),
                  f"broadcast {int_to_ip(flow.dst)} received on {link.name}")


def _mkroute_input(net: NetState, link: Link, flow: Flow, res: FibResult, ans: _Answer) -> RouteResult:
    """``ip_mkroute_input()``/``__mkroute_input()``: pick the hop, validate the source."""
    hop, hops = _select_hop(net, res, None)
    out = hop.dev if hop else None
    bad = fib_validate_source(net, flow, link, out, ans.steps)
    if bad:
        return ans.fail("invalid-argument", bad)
    assert res.route is not None
    gateway = _uses_gateway(net, hop, res.route.table)
    via = f" via {int_to_ip(gateway)}" if gateway else ""
    return ans.ok(res.route.type, out, gateway, None, hops,
                  f"forward{via} dev {out} (arrived on {link.name})")


def _joined_groups(link: Link) -> frozenset[int]:
    """Groups every IPv4 device joins when up (``ip_mc_up()``: 224.0.0.1)."""
    return frozenset({0xE0000001}) if link.admin_up else frozenset()


def _input_multicast(net: NetState, link: Link, flow: Flow, ans: _Answer) -> RouteResult:
    """The multicast branch of ``ip_route_input_rcu()`` and ``ip_route_input_mc()``."""
    if flow.dst not in _joined_groups(link):
        return ans.fail("invalid-argument", f"multicast {int_to_ip(flow.dst)}: group not joined on "
                        f"{link.name} and no multicast forwarding")
    src = flow.src
    if is_multicast(src) or is_lbcast(src):
        return ans.fail("invalid-argument", f"martian source {int_to_ip(src)}")
    if is_loopback(src) and not net.sysctls.conf_or(link.name, "route_localnet"):
        return ans.fail("invalid-argument", f"martian source {int_to_ip(src)} (127.0.0.0/8)")
    if is_zeronet(src):
        if not is_local_multicast(flow.dst) and flow.proto != IPPROTO_IGMP:
            return ans.fail("invalid-argument", f"martian source {int_to_ip(src)}")
    else:
        bad = fib_validate_source(net, replace(flow, dst=0), link, None, ans.steps)
        if bad:
            return ans.fail("invalid-argument", bad)
    return ans.ok("multicast", LOOPBACK, None, None, ((NextHop(dev=LOOPBACK), 1.0),),
                  f"multicast {int_to_ip(flow.dst)} received on {link.name}")


# ---------------------------------------------------------------------------------------------
# fib_validate_source (net/ipv4/fib_frontend.c)


def fib_validate_source(net: NetState, flow: Flow, dev: Link, oif: str | None,
                        steps: list[str]) -> str | None:
    """``fib_validate_source()``: None if the source is acceptable, else why not.

    ``flow`` is the arriving packet (src, dst, mark, tos, ...), ``oif`` the output device of a
    forwarded packet (None for local delivery)."""
    sc = net.sysctls
    rpf = sc.conf_max(dev.name, "rp_filter")
    if not rpf and (dev.name != oif or not sc.conf_or(dev.name, "send_redirects")):
        if sc.conf_or(dev.name, "accept_local"):
            return None
        if not (has_custom_local_routes(net) or has_custom_rules(net)):
            if flow.src in _index(net).local_addrs:
                return f"source {int_to_ip(flow.src)} is a local address (accept_local off)"
            return None
    return _full_validate_source(net, flow, dev, oif, rpf, steps)


def _reverse_flow(net: NetState, flow: Flow, dev: Link, oif: str | None) -> Flow:
    """The flowi4 of ``__fib_validate_source()``: reversed addresses (and ports), iif = the
    forward output device or ``lo``, mark only with ``src_valid_mark``, uid 0."""
    mark = flow.mark if net.sysctls.conf_or(dev.name, "src_valid_mark") else 0
    return Flow(dst=flow.src, src=flow.dst, iif=oif or LOOPBACK, oif=None, mark=mark, tos=flow.tos,
                uid=0, proto=flow.proto, sport=flow.dport, dport=flow.sport)


def _full_validate_source(net: NetState, flow: Flow, dev: Link, oif: str | None, rpf: int,
                          steps: list[str]) -> str | None:
    """``__fib_validate_source()``: the reverse route must be unicast (local only with
    accept_local) and, with rp_filter 1, leave through the arrival device."""
    src = int_to_ip(flow.src)
    res = fib_lookup(net, _reverse_flow(net, flow, dev, oif))
    if res.error is not None:
        steps.append(f"reverse lookup for {src} fails ({res.error.split(':')[0]})")
        return f"rp_filter on {dev.name}: no route back to {src}" if rpf else None
    assert res.route is not None
    accept_local = net.sysctls.conf_or(dev.name, "accept_local")
    if res.route.type != "unicast" and (res.route.type != "local" or not accept_local):
        return f"source {src} is covered by a {res.route.type} route ({format_route(res.route)})"
    if any(h.dev == dev.name for h in res.route.nexthops) or (res.route.type == "local" and dev.loopback):
        steps.append(f"reverse route to {src} leaves via {dev.name}: source valid")
        return None
    if not dev.addrs:
        return f"rp_filter on {dev.name}: no address on the device" if rpf else None
    if rpf == 1:
        back = res.route.nexthops[res.hop].dev if res.route.nexthops else "?"
        return f"dropped by rp_filter on {dev.name}: the reply route to {src} leaves via {back}"
    steps.append(f"reverse route to {src} leaves via another device; rp_filter {rpf} accepts")
    return None


# ---------------------------------------------------------------------------------------------
# Text forms, as ``ip rule`` / ``ip route`` print them


def _range_text(name: str, r: tuple[int, int] | None) -> str:
    if r is None:
        return ""
    return f" {name} {r[0]}" if r[0] == r[1] else f" {name} {r[0]}-{r[1]}"


def format_rule(rule: FibRule) -> str:
    """``PRIO: [not] from ... lookup T`` like ``ip rule show``."""
    parts = [f"{rule.priority}:", "not" if rule.invert else "", f"from {rule.src or 'all'}"]
    parts.append(f"to {rule.dst}" if rule.dst else "")
    parts.append(f"tos 0x{rule.tos:02x}" if rule.tos else "")
    if rule.fwmark is not None:
        parts.append(f"fwmark {rule.fwmark:#x}" + (f"/{rule.fwmask:#x}" if rule.fwmask != ALL_ONES else ""))
    parts.append(f"iif {rule.iif}" + (" [detached]" if rule.iif_detached else "") if rule.iif else "")
    parts.append(f"oif {rule.oif}" + (" [detached]" if rule.oif_detached else "") if rule.oif else "")
    parts.append(f"uidrange {rule.uidrange[0]}-{rule.uidrange[1]}" if rule.uidrange else "")
    parts.append(f"ipproto {proto_name(rule.ipproto)}" if rule.ipproto else "")
    parts.append((_range_text("sport", rule.sport) + _range_text("dport", rule.dport)).strip())
    parts.append(_action_text(rule))
    return " ".join(p for p in parts if p)


def _action_text(rule: FibRule) -> str:
    if rule.action == "goto":
        return f"goto {rule.goto}" + (" [unresolved]" if rule.unresolved else "")
    if rule.action != "lookup":
        return rule.action
    text = "lookup [l3mdev-table]" if rule.l3mdev else f"lookup {table_label(rule.table or RT_TABLE_MAIN)}"
    if rule.suppress_prefixlen is not None:
        text += f" suppress_prefixlength {rule.suppress_prefixlen}"
    if rule.suppress_ifgroup is not None:
        text += f" suppress_ifgroup {rule.suppress_ifgroup}"
    return text


def _hop_text(hop: NextHop) -> str:
    text = f" via {int_to_ip(hop.gateway)}" if hop.gateway else ""
    text += f" dev {hop.dev}" if hop.dev else ""
    if hop.weight != 1:
        text += f" weight {hop.weight}"
    return text + "".join(f" {f}" for f in sorted(hop.flags))


def format_route(route: Route | None) -> str:
    """``[type] DST [tos T] via GW dev DEV [table T] [metric M]`` like ``ip route show``."""
    if route is None:
        return "(none)"
    dst = "default" if route.plen == 0 else (int_to_ip(route.dst.addr) if route.plen == 32 else str(route.dst))
    text = ("" if route.type == "unicast" else route.type + " ") + dst
    text += f" tos 0x{route.tos:02x}" if route.tos else ""
    if len(route.nexthops) == 1:
        text += _hop_text(route.nexthops[0])
    else:
        text += "".join(" nexthop" + _hop_text(h) for h in route.nexthops)
    text += f" table {table_label(route.table)}" if route.table != RT_TABLE_MAIN else ""
    text += f" metric {route.metric}" if route.metric else ""
    text += f" src {int_to_ip(route.prefsrc)}" if route.prefsrc else ""
    return text


def route_alternatives(net: NetState, flow: Flow, result: RouteResult) -> tuple[RouteResult, ...]:
    """One answer per hop a multipath hash can pick (just ``result`` otherwise): the same
    route through each live hop, with that hop's device, gateway and chosen source."""
    if result.error is not None or result.route is None or len(result.hops) < 2:
        return (result,)
    out = []
    for hop, _weight in result.hops:
        prefsrc = result.prefsrc
        if flow.iif is None and not flow.src:
            prefsrc = fib_result_prefsrc(net, result.route, hop) or None
        table = result.route.table if result.route is not None else None
        gateway = _uses_gateway(net, hop, table) if result.type == "unicast" else result.gateway
        out.append(replace(result, dev=hop.dev, gateway=gateway, prefsrc=prefsrc))
    return tuple(out)


def describe_hops(hops: Iterable[tuple[NextHop, float]]) -> str:
    return ", ".join(f"{_hop_text(h).strip()} ({p:.0%})" for h, p in hops)
