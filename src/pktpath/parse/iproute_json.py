"""``ip -j`` output (iproute2) -> model: links and addresses, routes, policy-routing rules.

Sans-IO: each parser takes ``(text, source)``.  Bad input raises ``ParseError`` naming the
JSON path and what was expected there (``ip-route.json: JSON path $[3].dst: expected ...``).
IPv6 entries (``ip -j route show table all`` prints ``::1`` too) are skipped.

The key names are the ones iproute2's ``print_route()``, ``print_rule()`` and
``print_linkinfo()``/``print_addrinfo()`` write; they were checked against ``ip -j`` 6.1 in
a scratch network namespace.  ``kernel_routes()`` re-derives what ``fib_add_ifaddr()``
(net/ipv4/fib_frontend.c) installs for each address, for snapshots without a local table.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TypeVar

from pktpath.engine.skb import PROTO_NAMES
from pktpath.errors import ParseError, SourceLoc
from pktpath.model.addr import ALL_ONES, Prefix, int_to_ip, ip_to_int, plen_to_mask
from pktpath.model.net import (
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    SCOPES,
    TABLE_NAMES,
    FibRule,
    IfAddr,
    Link,
    NextHop,
    Route,
)

T = TypeVar("T")

ROUTE_TYPES = frozenset({
    "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable",
    "prohibit", "throw", "nat", "xresolve",
})
RULE_ACTIONS = frozenset({"blackhole", "unreachable", "prohibit"})
NEXTHOP_FLAGS = frozenset({
    "dead", "pervasive", "onlink", "offload", "linkdown", "unresolved", "trap", "rt_offload",
    "rt_trap", "rt_offload_failed",
})

# Tables and groups named in /etc/iproute2/rt_tables or .../group on the snapshot's host are
# not in the snapshot: give each unknown name a stable id (the same name -> the same table).
_SYNTHETIC_BASE = 0x7F000000
_SYNTHETIC_TABLES: dict[int, str] = {}


class _Ctx:
    """Where we are in the document: the file name and the JSON path, for error messages."""

    def __init__(self, source: str, text: str = "") -> None:
        self.source = source
        self.text = text

    def fail(self, path: str, expected: str, got: object = None) -> ParseError:
        shown = "" if got is None else f", got {json.dumps(got)[:80]}"
        return ParseError(self.source, self._line_of(path), f"JSON path {path}: expected {expected}{shown}")

    def _line_of(self, path: str) -> int:
        """The line where the top-level element ``$[i]`` of the path starts (0 if unknown)."""
        if not path.startswith("$[") or "]" not in path:
            return 1 if self.text.strip() else 0
        index = int(path[2:path.index("]")])
        decoder = json.JSONDecoder()
        pos = self.text.index("[") + 1
        for i in range(index + 1):
            while pos < len(self.text) and self.text[pos] in " \t\r\n,":
                pos += 1
            if i == index:
                return self.text.count("\n", 0, pos) + 1
            try:
                pos = decoder.raw_decode(self.text, pos)[1]
            except json.JSONDecodeError:
                return 0
        return 0


def _load(text: str, source: str) -> list[object]:
    """The top-level JSON array of an ``ip -j`` dump (an empty file is an empty list)."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(source, e.lineno, f"broken JSON: {e.msg} (column {e.colno})") from e
    if not isinstance(data, list):
        raise _Ctx(source, text).fail("$", "a JSON array (the output of ip -j)", type(data).__name__)
    return data


def _obj(ctx: _Ctx, value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ctx.fail(path, "a JSON object", value)
    return value


def _opt(ctx: _Ctx, obj: Mapping[str, object], key: str, path: str,
         conv: Callable[[_Ctx, object, str], T]) -> T | None:
    value = obj.get(key)
    if value is None:
        return None
    return conv(ctx, value, f"{path}.{key}")


def _req(ctx: _Ctx, obj: Mapping[str, object], key: str, path: str,
         conv: Callable[[_Ctx, object, str], T]) -> T:
    if key not in obj or obj[key] is None:
        raise ctx.fail(f"{path}.{key}", f"a value for {key!r} (missing)")
    return conv(ctx, obj[key], f"{path}.{key}")


def _str(ctx: _Ctx, value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ctx.fail(path, "a string", value)
    return value


def _int(ctx: _Ctx, value: object, path: str) -> int:
    """An integer, as JSON number or as decimal/hex text (``"0x10"``)."""
    if isinstance(value, bool):
        raise ctx.fail(path, "a number", value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise ctx.fail(path, "a number", value)


def _ip(ctx: _Ctx, value: object, path: str) -> int:
    text = _str(ctx, value, path)
    if text == "0":  # print_rule() writes "0" for a zero address with a prefix length
        return 0
    try:
        return ip_to_int(text)
    except ValueError:
        raise ctx.fail(path, "an IPv4 address", value) from None


def _flags(ctx: _Ctx, value: object, path: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise ctx.fail(path, "a list of flag names", value)
    return frozenset(str(f) for f in value)


def _is_ipv6(obj: Mapping[str, object], *keys: str) -> bool:
    return any(isinstance(obj.get(k), str) and ":" in str(obj.get(k)) for k in keys)


def _synthetic_id(name: str) -> int:
    return _SYNTHETIC_BASE + (zlib.crc32(name.encode()) & 0xFFFFFF)


def _table_id(ctx: _Ctx, value: object, path: str) -> int:
    """``"main"``, ``"local"``, ``"default"``, ``"100"`` or 100 -> table id (rtnl_rttable_a2n)."""
    if isinstance(value, str) and value in TABLE_NAMES:
        return TABLE_NAMES[value]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return int(value, 0)
        except ValueError:
            number = _synthetic_id(value)
            _SYNTHETIC_TABLES[number] = value
            return number
    raise ctx.fail(path, "a routing table name or number", value)


def table_label(table: int) -> str:
    """The name ``ip`` prints for a table id, including names only the snapshot used."""
    if table in _SYNTHETIC_TABLES:
        return _SYNTHETIC_TABLES[table]
    for name, number in TABLE_NAMES.items():
        if number == table and name != "unspec":
            return name
    return str(table)


def _group(ctx: _Ctx, value: object, path: str) -> int:
    """A device group: ``default`` (0), a number, or a name from the host's group file."""
    if value == "default":
        return 0
    try:
        return _int(ctx, value, path)
    except ParseError:
        if isinstance(value, str) and value.strip():
            return _synthetic_id(value)
        raise


def _scope(ctx: _Ctx, value: object, path: str) -> int:
    if isinstance(value, str) and value in SCOPES:
        return SCOPES[value]
    try:
        return _int(ctx, value, path)
    except ParseError:
        raise ctx.fail(path, "a scope (global, site, link, host, nowhere or a number)", value) from None


def _proto(ctx: _Ctx, value: object, path: str) -> int:
    """``ipproto`` as ``inet_proto_n2a()`` prints it: a name, ``ipproto-N`` or a number."""
    if isinstance(value, str):
        if value in PROTO_NAMES:
            return PROTO_NAMES[value]
        if value.startswith("ipproto-") and value[8:].isdigit():
            return int(value[8:])
    try:
        return _int(ctx, value, path)
    except ParseError:
        raise ctx.fail(path, "an IP protocol name or number", value) from None


# ---------------------------------------------------------------------------------------------
# ip -j addr show / ip -j -d link show


def _addr_info(ctx: _Ctx, raw: object, path: str) -> IfAddr | None:
    obj = _obj(ctx, raw, path)
    if obj.get("family") not in (None, "inet"):
        return None
    local = _req(ctx, obj, "local", path, _ip)
    plen = _req(ctx, obj, "prefixlen", path, _int)
    if not 0 <= plen <= 32:
        raise ctx.fail(f"{path}.prefixlen", "a prefix length 0..32", plen)
    return IfAddr(
        local=local,
        prefixlen=plen,
        scope=_opt(ctx, obj, "scope", path, _scope) or 0,
        secondary=bool(obj.get("secondary") or obj.get("temporary")),
        label=_opt(ctx, obj, "label", path, _str) or "",
        broadcast=_opt(ctx, obj, "broadcast", path, _ip),
        peer=_opt(ctx, obj, "address", path, _ip),
        noprefixroute="noprefixroute" in obj,
        metric=_opt(ctx, obj, "metric", path, _int) or 0,
    )


def _link(ctx: _Ctx, raw: object, path: str) -> Link:
    obj = _obj(ctx, raw, path)
    name = _req(ctx, obj, "ifname", path, _str)
    flags = _opt(ctx, obj, "flags", path, _flags) or frozenset()
    loopback = "LOOPBACK" in flags or obj.get("link_type") == "loopback"
    infos = obj.get("addr_info") or []
    if not isinstance(infos, list):
        raise ctx.fail(f"{path}.addr_info", "a list of addresses", infos)
    addrs = tuple(a for i, raw_a in enumerate(infos)
                  if (a := _addr_info(ctx, raw_a, f"{path}.addr_info[{i}]")) is not None)
    kind, vrf_table = _linkinfo(ctx, obj, path)
    return Link(
        ifindex=_req(ctx, obj, "ifindex", path, _int),
        name=name,
        kind=kind,
        admin_up="UP" in flags,
        carrier="LOWER_UP" in flags or (loopback and "UP" in flags),
        mtu=_opt(ctx, obj, "mtu", path, _int) or 1500,
        mac=_opt(ctx, obj, "address", path, _str),
        master=_opt(ctx, obj, "master", path, _str),
        group=_opt(ctx, obj, "group", path, _group) or 0,
        loopback=loopback,
        addrs=addrs,
        vrf_table=vrf_table,
        origin=SourceLoc(ctx.source, 0, path),
    )


def _linkinfo(ctx: _Ctx, obj: Mapping[str, object], path: str) -> tuple[str | None, int | None]:
    info = obj.get("linkinfo")
    if info is None:
        return None, None
    info_obj = _obj(ctx, info, f"{path}.linkinfo")
    kind = _opt(ctx, info_obj, "info_kind", f"{path}.linkinfo", _str)
    data = info_obj.get("info_data")
    vrf_table = None
    if kind == "vrf" and isinstance(data, dict) and "table" in data:
        vrf_table = _table_id(ctx, data["table"], f"{path}.linkinfo.info_data.table")
    return kind, vrf_table


def parse_links(text: str, source: str) -> tuple[Link, ...]:
    """``ip -j addr show`` or ``ip -j -d link show`` -> links (with their IPv4 addresses)."""
    ctx = _Ctx(source, text)
    return tuple(_link(ctx, raw, f"$[{i}]") for i, raw in enumerate(_load(text, source)))


def parse_addrs(text: str, source: str) -> tuple[Link, ...]:
    """``ip -j addr show`` -> links with their ``addr_info`` (IPv4 only), in dump order."""
    return parse_links(text, source)


def merge_links(addr_links: Iterable[Link], link_json_text: str, source: str) -> tuple[Link, ...]:
    """Complete the links of ``ip -j addr`` with ``ip -j -d link`` (kind, master, vrf table).

    Addresses come from the addr dump; links only the link dump knows are appended.
    """
    details = {link.name: link for link in parse_links(link_json_text, source)}
    merged: list[Link] = []
    for link in addr_links:
        d = details.pop(link.name, None)
        if d is None:
            merged.append(link)
            continue
        merged.append(replace(d, addrs=link.addrs or d.addrs, origin=link.origin))
    merged.extend(details.values())
    return tuple(sorted(merged, key=lambda lk: lk.ifindex))


# ---------------------------------------------------------------------------------------------
# ip -j route show table all


def _dst(ctx: _Ctx, value: object, path: str) -> Prefix:
    text = _str(ctx, value, path)
    if text == "default":
        return Prefix(0, 0)
    addr_text, sep, plen_text = text.partition("/")
    try:
        addr = ip_to_int(addr_text)
    except ValueError:
        raise ctx.fail(path, "an IPv4 prefix or \"default\"", value) from None
    plen = 32
    if sep:
        if not plen_text.isdigit() or int(plen_text) > 32:
            raise ctx.fail(path, "a prefix length 0..32 after '/'", value)
        plen = int(plen_text)
    if addr & ~plen_to_mask(plen) & ALL_ONES:
        raise ctx.fail(path, "a prefix with no host bits set", value)
    return Prefix.from_plen(addr, plen)


def _gateway(ctx: _Ctx, obj: Mapping[str, object], path: str) -> int | None:
    gw = _opt(ctx, obj, "gateway", path, _ip)
    via = obj.get("via")
    if gw is None and isinstance(via, dict) and via.get("family") == "inet":
        gw = _req(ctx, via, "host", f"{path}.via", _ip)
    return gw


def _nexthop(ctx: _Ctx, raw: object, path: str) -> NextHop:
    obj = _obj(ctx, raw, path)
    return NextHop(
        gateway=_gateway(ctx, obj, path),
        dev=_opt(ctx, obj, "dev", path, _str),
        weight=_opt(ctx, obj, "weight", path, _int) or 1,
        flags=_opt(ctx, obj, "flags", path, _flags) or frozenset(),
    )


def _route_type(ctx: _Ctx, value: object, path: str) -> str:
    if not isinstance(value, str) or value not in ROUTE_TYPES:
        raise ctx.fail(path, "a route type (" + ", ".join(sorted(ROUTE_TYPES)) + ")", value)
    return value


def _route(ctx: _Ctx, raw: object, path: str) -> Route | None:
    obj = _obj(ctx, raw, path)
    if _is_ipv6(obj, "dst", "gateway", "prefsrc"):
        return None
    rtype = _opt(ctx, obj, "type", path, _route_type) or "unicast"
    dst = _req(ctx, obj, "dst", path, _dst)
    tos = _opt(ctx, obj, "tos", path, _int)
    if tos is None:
        tos = _opt(ctx, obj, "dsfield", path, _int) or 0
    hops = _route_nexthops(ctx, obj, path)
    default_scope = SCOPES["host"] if rtype in ("local", "nat") else SCOPES["link"] if (
        rtype in ("broadcast", "multicast", "anycast")) else 0
    scope = _opt(ctx, obj, "scope", path, _scope)
    return Route(
        dst=dst,
        table=_opt(ctx, obj, "table", path, _table_id) or RT_TABLE_MAIN,
        type=rtype,
        tos=tos,
        metric=_opt(ctx, obj, "metric", path, _int) or 0,
        scope=default_scope if scope is None else scope,
        protocol=_opt(ctx, obj, "protocol", path, _str),
        prefsrc=_opt(ctx, obj, "prefsrc", path, _ip),
        nexthops=hops,
        origin=SourceLoc(ctx.source, 0, path),
    )


def _route_nexthops(ctx: _Ctx, obj: Mapping[str, object], path: str) -> tuple[NextHop, ...]:
    raw_hops = obj.get("nexthops")
    if raw_hops is not None:
        if not isinstance(raw_hops, list) or not raw_hops:
            raise ctx.fail(f"{path}.nexthops", "a non-empty list of nexthops", raw_hops)
        return tuple(_nexthop(ctx, h, f"{path}.nexthops[{i}]") for i, h in enumerate(raw_hops))
    gw = _gateway(ctx, obj, path)
    dev = _opt(ctx, obj, "dev", path, _str)
    if gw is None and dev is None:
        return ()
    flags = _opt(ctx, obj, "flags", path, _flags) or frozenset()
    return (NextHop(gateway=gw, dev=dev, flags=flags & NEXTHOP_FLAGS),)


def parse_routes(text: str, source: str) -> tuple[Route, ...]:
    """``ip -j route show table all`` -> routes of every table, in dump order."""
    ctx = _Ctx(source, text)
    routes = (_route(ctx, raw, f"$[{i}]") for i, raw in enumerate(_load(text, source)))
    return tuple(r for r in routes if r is not None)


# ---------------------------------------------------------------------------------------------
# Routes the kernel adds for addresses (fib_add_ifaddr)


def _kernel_route(link: Link, rtype: str, dst: int, plen: int, prim: IfAddr, metric: int = 0) -> Route:
    """One route as ``fib_magic()`` installs it: proto kernel, prefsrc = the primary address."""
    local_like = rtype == "local"
    flags = frozenset() if local_like or link.carrier or link.loopback else frozenset({"linkdown"})
    return Route(
        dst=Prefix.from_plen(dst, plen),
        table=RT_TABLE_MAIN if rtype == "unicast" else RT_TABLE_LOCAL,
        type=rtype,
        metric=metric,
        scope=SCOPES["host"] if local_like else SCOPES["link"],
        protocol="kernel",
        prefsrc=prim.local,
        nexthops=(NextHop(dev=link.name, flags=flags),),
        origin=SourceLoc("(derived from addresses)", 0, f"{link.name} {int_to_ip(prim.local)}"),
    )


def _primary_for(link: Link, ifa: IfAddr) -> IfAddr:
    """``inet_ifa_byprefix()``: a secondary's routes take the primary of its subnet as prefsrc."""
    if not ifa.secondary:
        return ifa
    for other in link.addrs:
        if not other.secondary and other.prefixlen == ifa.prefixlen and other.prefix == ifa.prefix:
            return other
    return ifa


def ifaddr_routes(link: Link, ifa: IfAddr) -> list[Route]:
    """What ``fib_add_ifaddr()`` (net/ipv4/fib_frontend.c) adds for one address."""
    prim = _primary_for(link, ifa)
    out = [_kernel_route(link, "local", ifa.local, 32, prim)]
    if not link.admin_up:
        return out
    if ifa.broadcast is not None and ifa.broadcast != ALL_ONES:
        out.append(_kernel_route(link, "broadcast", ifa.broadcast, 32, prim))
    prefix = ifa.prefix.addr
    zeronet = prefix == 0  # ipv4_is_zeronet(): 0.0.0.0 only since Linux 5.3
    if not zeronet and not ifa.secondary and (prefix != ifa.local or ifa.prefixlen < 32):
        if not ifa.noprefixroute:
            rtype = "local" if link.loopback else "unicast"
            out.append(_kernel_route(link, rtype, prefix, ifa.prefixlen, prim, ifa.metric))
        if ifa.prefixlen < 31:
            out.append(_kernel_route(link, "broadcast", prefix | ~ifa.prefix.mask & ALL_ONES, 32, prim))
    return out


def kernel_routes(links: Iterable[Link]) -> tuple[Route, ...]:
    """Every route ``fib_add_ifaddr()`` would have installed for the links' addresses."""
    return tuple(r for link in links for ifa in link.addrs for r in ifaddr_routes(link, ifa))


def _same_route(a: Route, b: Route) -> bool:
    return (a.table, a.dst, a.type, a.tos, a.metric) == (b.table, b.dst, b.type, b.tos, b.metric) and (
        {h.dev for h in a.nexthops} == {h.dev for h in b.nexthops})


def complete_routes(routes: tuple[Route, ...], links: Iterable[Link]) -> tuple[Route, ...]:
    """Add the kernel's address routes when the dump has no local table (or no dump at all).

    A dump that has a local table already holds them; otherwise the local and broadcast
    routes and the connected prefix routes are derived, skipping those the dump already has.
    """
    if any(r.table == RT_TABLE_LOCAL for r in routes):
        return routes
    extra = [r for r in kernel_routes(links) if not any(_same_route(r, have) for have in routes)]
    return routes + tuple(extra)


# ---------------------------------------------------------------------------------------------
# ip -j rule show


def _port_range(ctx: _Ctx, obj: Mapping[str, object], name: str, path: str) -> tuple[int, int] | None:
    single = _opt(ctx, obj, name, path, _int)
    start = _opt(ctx, obj, f"{name}_start", path, _int)
    end = _opt(ctx, obj, f"{name}_end", path, _int)
    if single is not None:
        return (single, single)
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise ctx.fail(f"{path}.{name}_start", f"both {name}_start and {name}_end")
    return (start, end)


def _uid_range(ctx: _Ctx, obj: Mapping[str, object], path: str) -> tuple[int, int] | None:
    start = _opt(ctx, obj, "uid_start", path, _int)
    end = _opt(ctx, obj, "uid_end", path, _int)
    if start is not None or end is not None:
        if start is None or end is None:
            raise ctx.fail(f"{path}.uid_start", "both uid_start and uid_end")
        return (start, end)
    text = _opt(ctx, obj, "uidrange", path, _str)
    if text is None:
        return None
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise ctx.fail(f"{path}.uidrange", "a uid range 'START-END'", text)
    return (int(lo), int(hi) if sep else int(lo))


def _selector_prefix(ctx: _Ctx, obj: Mapping[str, object], key: str, path: str) -> Prefix | None:
    value = obj.get(key)
    if value is None or value == "all":
        return None
    addr = _ip(ctx, value, f"{path}.{key}")
    plen = _opt(ctx, obj, f"{key}len", path, _int)
    plen = 32 if plen is None else plen
    if not 0 <= plen <= 32:
        raise ctx.fail(f"{path}.{key}len", "a prefix length 0..32", plen)
    return None if plen == 0 else Prefix.from_plen(addr, plen)


def _action(ctx: _Ctx, obj: Mapping[str, object], path: str) -> tuple[str, int | None]:
    """(action, goto target) from ``goto``/``target``, ``nop``, ``action`` or ``table``."""
    if "goto" in obj or "target" in obj:
        key = "goto" if "goto" in obj else "target"
        value = obj[key]
        return "goto", None if value == "none" else _int(ctx, value, f"{path}.{key}")
    if "nop" in obj:
        return "nop", None
    action = obj.get("action")
    if action is not None:
        if action == "nop" or action == "goto":
            return str(action), None
        if not isinstance(action, str) or action not in RULE_ACTIONS:
            raise ctx.fail(f"{path}.action", "a rule action (blackhole, unreachable, prohibit, "
                           "goto, nop) or a table", action)
        return str(action), None
    if "table" in obj or "l3mdev" in obj:
        return "lookup", None
    raise ctx.fail(path, "a rule action: table, goto, nop, blackhole, unreachable or prohibit")


def _rule(ctx: _Ctx, raw: object, path: str) -> FibRule | None:
    obj = _obj(ctx, raw, path)
    if _is_ipv6(obj, "src", "dst"):
        return None
    action, goto = _action(ctx, obj, path)
    fwmark = _opt(ctx, obj, "fwmark", path, _int)
    fwmask = _opt(ctx, obj, "fwmask", path, _int)
    table = _opt(ctx, obj, "table", path, _table_id)
    if action == "lookup" and table is None and "l3mdev" not in obj:
        raise ctx.fail(f"{path}.table", "a table to look up")
    return FibRule(
        priority=_opt(ctx, obj, "priority", path, _int) or 0,
        action=action,
        table=table,
        goto=goto,
        invert="not" in obj,
        src=_selector_prefix(ctx, obj, "src", path),
        dst=_selector_prefix(ctx, obj, "dst", path),
        iif=_opt(ctx, obj, "iif", path, _str),
        oif=_opt(ctx, obj, "oif", path, _str),
        fwmark=fwmark if fwmark is not None else (0 if fwmask is not None else None),
        fwmask=ALL_ONES if fwmask is None else fwmask,
        tos=(_opt(ctx, obj, "tos", path, _int) or _opt(ctx, obj, "dsfield", path, _int) or 0),
        dscp=_opt(ctx, obj, "dscp", path, _int),
        ipproto=_opt(ctx, obj, "ipproto", path, _proto),
        sport=_port_range(ctx, obj, "sport", path),
        dport=_port_range(ctx, obj, "dport", path),
        uidrange=_uid_range(ctx, obj, path),
        l3mdev="l3mdev" in obj,
        suppress_prefixlen=_opt(ctx, obj, "suppress_prefixlen", path, _int),
        suppress_ifgroup=_opt(ctx, obj, "suppress_ifgroup", path, _group),
        iif_detached="iif_detached" in obj,
        oif_detached="oif_detached" in obj,
        unresolved="unresolved" in obj,
        protocol=_opt(ctx, obj, "protocol", path, _str),
        origin=SourceLoc(ctx.source, 0, path),
    )


def parse_rules(text: str, source: str) -> tuple[FibRule, ...]:
    """``ip -j rule show`` -> rules in list order (the order the kernel walks them)."""
    ctx = _Ctx(source, text)
    rules = (_rule(ctx, raw, f"$[{i}]") for i, raw in enumerate(_load(text, source)))
    return tuple(r for r in rules if r is not None)
