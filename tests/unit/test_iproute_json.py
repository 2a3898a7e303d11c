"""Parsers of ``ip -j`` output and sysctl text, and the kernel's address routes.

The JSON shapes below were taken from ``ip -j`` (iproute2 6.1) in a scratch namespace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pktpath.errors import ParseError
from pktpath.model.addr import Prefix, ip_to_int
from pktpath.model.net import DEFAULT_RULES, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, SCOPES
from pktpath.parse.iproute_json import (
    complete_routes,
    kernel_routes,
    merge_links,
    parse_addrs,
    parse_routes,
    parse_rules,
    table_label,
)
from pktpath.parse.sysctl import parse_sysctl

IP = ip_to_int
CASES = Path(__file__).resolve().parents[3] / "shared" / "kernel-cases"


def _link(name: str, index: int, *infos: dict[str, object], flags: tuple[str, ...] = ("UP", "LOWER_UP"),
          **extra: object) -> dict[str, object]:
    obj: dict[str, object] = {"ifindex": index, "ifname": name, "flags": list(flags), "mtu": 1500,
                              "group": "default", "address": "02:00:00:00:00:01",
                              "addr_info": [dict({"family": "inet", "scope": "global", "label": name}, **i)
                                            for i in infos]}
    obj.update(extra)
    return obj


def _addrs(*links: dict[str, object]) -> str:
    return json.dumps(list(links))


# ---------------------------------------------------------------------------------------------
# ip -j addr / ip -j -d link


def test_parse_addrs_reads_every_address_field() -> None:
    text = _addrs(
        _link("lo", 1, {"local": "127.0.0.1", "prefixlen": 8, "scope": "host"},
              flags=("LOOPBACK", "UP", "LOWER_UP"), link_type="loopback"),
        _link("eth0", 2,
              {"local": "10.0.0.1", "prefixlen": 24},
              {"local": "10.0.0.9", "prefixlen": 24, "secondary": True},
              {"local": "10.3.0.1", "address": "10.3.0.2", "prefixlen": 24},
              {"local": "10.4.0.1", "prefixlen": 24, "noprefixroute": True, "metric": 77},
              {"local": "10.5.0.1", "prefixlen": 24, "broadcast": "10.5.0.77", "label": "eth0:x"},
              {"local": "10.6.0.1", "prefixlen": 8, "scope": "link"},
              {"family": "inet6", "local": "fe80::1", "prefixlen": 64}),
    )
    lo, eth0 = parse_addrs(text, "ip-addr.json")
    assert lo.loopback and lo.addrs[0].scope == SCOPES["host"]
    assert [a.local for a in eth0.addrs] == [IP(a) for a in
                                            ("10.0.0.1", "10.0.0.9", "10.3.0.1", "10.4.0.1", "10.5.0.1", "10.6.0.1")]
    assert eth0.addrs[1].secondary
    assert eth0.addrs[2].peer == IP("10.3.0.2") and eth0.addrs[2].prefix == Prefix.parse("10.3.0.0/24")
    assert eth0.addrs[3].noprefixroute and eth0.addrs[3].metric == 77
    assert eth0.addrs[4].broadcast == IP("10.5.0.77") and eth0.addrs[4].label == "eth0:x"
    assert eth0.addrs[5].scope == SCOPES["link"]


@pytest.mark.parametrize(("flags", "admin_up", "carrier"), [
    pytest.param(["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], True, True, id="up"),
    pytest.param(["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"], True, False, id="no-carrier"),
    pytest.param(["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "M-DOWN"], True, False, id="m-down"),
    pytest.param(["BROADCAST", "MULTICAST"], False, False, id="admin-down"),
])
def test_link_flags(flags: list[str], admin_up: bool, carrier: bool) -> None:
    (link,) = parse_addrs(_addrs(_link("eth0", 2, flags=tuple(flags))), "ip-addr.json")
    assert (link.admin_up, link.carrier) == (admin_up, carrier)


def test_merge_links_adds_kind_master_group_and_link_only_devices() -> None:
    addr_links = parse_addrs(_addrs(_link("eth0", 2, {"local": "10.0.0.1", "prefixlen": 24})), "ip-addr.json")
    link_json = json.dumps([
        {"ifindex": 2, "ifname": "eth0", "flags": ["UP", "LOWER_UP"], "mtu": 9000, "group": "7",
         "master": "br0", "linkinfo": {"info_kind": "veth"}},
        {"ifindex": 3, "ifname": "br0", "flags": ["UP", "LOWER_UP"], "linkinfo": {"info_kind": "bridge"}},
        {"ifindex": 4, "ifname": "vrf1", "flags": ["UP"],
         "linkinfo": {"info_kind": "vrf", "info_data": {"table": 10}}},
    ])
    eth0, br0, vrf1 = merge_links(addr_links, link_json, "ip-link.json")
    assert (eth0.kind, eth0.master, eth0.group, eth0.mtu) == ("veth", "br0", 7, 9000)
    assert eth0.addrs[0].local == IP("10.0.0.1")
    assert br0.kind == "bridge" and br0.addrs == ()
    assert vrf1.vrf_table == 10


# ---------------------------------------------------------------------------------------------
# ip -j route show table all


def test_parse_routes_every_field() -> None:
    text = json.dumps([
        {"type": "anycast", "dst": "3.0.0.0/8", "dev": "d0", "table": "7", "scope": "link", "flags": []},
        {"type": "throw", "dst": "4.0.0.0/8", "table": "7", "flags": []},
        {"dst": "1.0.0.0/8", "tos": "0x10", "gateway": "10.0.0.5", "dev": "d0", "metric": 10,
         "flags": ["linkdown"], "metrics": [{"mtu": 1400}]},
        {"dst": "2.0.0.0/8", "flags": [], "nexthops": [
            {"gateway": "10.0.0.5", "dev": "d0", "weight": 3, "flags": ["onlink"]},
            {"gateway": "10.0.0.6", "dev": "d1", "weight": 1, "flags": ["dead", "linkdown"]}]},
        {"dst": "5.0.0.0/8", "dev": "d0", "protocol": "openr", "scope": "link", "prefsrc": "10.0.0.9",
         "flags": [], "flow": {"to": "5"}},
        {"type": "unreachable", "dst": "default", "metric": 3, "table": "default", "flags": []},
        {"type": "local", "dst": "10.0.0.1", "dev": "d0", "table": "local", "protocol": "kernel",
         "scope": "host", "prefsrc": "10.0.0.1", "flags": []},
        {"type": "local", "dst": "::1", "dev": "lo", "table": "local", "protocol": "kernel", "metric": 0,
         "flags": [], "pref": "medium"},
    ])
    anycast, throw, tos, multi, src, unreach, local = parse_routes(text, "ip-route.json")
    assert (anycast.type, anycast.table, anycast.scope) == ("anycast", 7, SCOPES["link"])
    assert (throw.type, throw.nexthops) == ("throw", ())
    assert (tos.tos, tos.metric, tos.nexthops[0].gateway) == (0x10, 10, IP("10.0.0.5"))
    assert tos.nexthops[0].flags == {"linkdown"}
    assert [(h.dev, h.weight, set(h.flags)) for h in multi.nexthops] == [
        ("d0", 3, {"onlink"}), ("d1", 1, {"dead", "linkdown"})]
    assert (src.prefsrc, src.protocol) == (IP("10.0.0.9"), "openr")
    assert (unreach.dst, unreach.table, unreach.metric) == (Prefix(0, 0), RT_TABLE_DEFAULT, 3)
    assert (local.table, local.scope, local.type) == (RT_TABLE_LOCAL, SCOPES["host"], "local")


def test_named_tables_keep_their_name() -> None:
    (route,) = parse_routes(json.dumps([{"dst": "default", "dev": "d0", "table": "vpn", "flags": []}]), "r")
    (rule,) = parse_rules(json.dumps([{"priority": 5, "src": "all", "table": "vpn"}]), "r")
    assert route.table == rule.table and table_label(route.table) == "vpn"


# ---------------------------------------------------------------------------------------------
# ip -j rule show


def test_parse_rules_every_key() -> None:
    text = json.dumps([
        {"priority": 0, "src": "all", "table": "local"},
        {"priority": 100, "not": None, "src": "10.0.0.0", "srclen": 8, "dst": "1.2.3.4", "tos": "0x10",
         "fwmark": "0x5", "fwmask": "0xf", "iif": "d0", "oif": "d1", "uid_start": 5, "uid_end": 10,
         "ipproto": "tcp", "sport_start": 1, "sport_end": 5, "dport": 7, "table": "100",
         "suppress_prefixlen": 3, "suppress_ifgroup": "5"},
        {"priority": 101, "src": "all", "goto": 200, "unresolved": None},
        {"priority": 102, "src": "all", "goto": 103},
        {"priority": 103, "src": "all", "nop": None},
        {"priority": 104, "src": "all", "action": "blackhole"},
        {"priority": 105, "src": "all", "l3mdev": None},
        {"priority": 106, "src": "all", "iif": "gone", "iif_detached": None, "oif": "gone2",
         "oif_detached": None, "action": "prohibit"},
        {"priority": 107, "src": "all", "fwmark": "0x7", "action": "unreachable"},
        {"priority": 108, "src": "all", "fwmark": "0", "fwmask": "0x1", "uidrange": "3-4", "table": "main"},
        {"priority": 109, "src": "0", "srclen": 8, "ipproto": "ipproto-253", "table": "default"},
    ])
    rules = parse_rules(text, "ip-rule.json")
    full = rules[1]
    assert full.invert and full.src == Prefix.parse("10.0.0.0/8") and full.dst == Prefix.parse("1.2.3.4/32")
    assert (full.tos, full.fwmark, full.fwmask, full.iif, full.oif) == (0x10, 5, 0xF, "d0", "d1")
    assert (full.uidrange, full.ipproto, full.sport, full.dport) == ((5, 10), 6, (1, 5), (7, 7))
    assert (full.table, full.suppress_prefixlen, full.suppress_ifgroup) == (100, 3, 5)
    assert (rules[2].action, rules[2].goto, rules[2].unresolved) == ("goto", 200, True)
    assert (rules[3].action, rules[3].goto, rules[3].unresolved) == ("goto", 103, False)
    assert rules[4].action == "nop" and rules[5].action == "blackhole"
    assert rules[6].l3mdev and rules[6].table is None
    assert rules[7].iif_detached and rules[7].oif_detached and rules[7].action == "prohibit"
    assert (rules[8].fwmark, rules[8].fwmask, rules[8].action) == (7, 0xFFFFFFFF, "unreachable")
    assert (rules[9].fwmark, rules[9].fwmask, rules[9].uidrange) == (0, 1, (3, 4))
    assert (rules[10].src, rules[10].ipproto) == (Prefix.parse("0.0.0.0/8"), 253)


def test_default_rules_parse_to_the_model_defaults() -> None:
    text = json.dumps([{"priority": 0, "src": "all", "table": "local"},
                       {"priority": 32766, "src": "all", "table": "main"},
                       {"priority": 32767, "src": "all", "table": "default"}])
    assert parse_rules(text, "ip-rule.json") == DEFAULT_RULES


# ---------------------------------------------------------------------------------------------
# Errors: file, JSON path, what was expected


@pytest.mark.parametrize(("parser", "text", "fragment"), [
    pytest.param(parse_routes, "[{", "broken JSON", id="broken-json"),
    pytest.param(parse_routes, '{"dst": "default"}', "JSON path $: expected a JSON array", id="not-a-list"),
    pytest.param(parse_routes, '[1]', "JSON path $[0]: expected a JSON object", id="not-an-object"),
    pytest.param(parse_routes, '[{"dst": "default"}, {"dst": "10.0.0.0/33"}]', "JSON path $[1].dst",
                 id="bad-prefix"),
    pytest.param(parse_routes, '[{"dst": "10.0.0.1/24"}]', "no host bits", id="host-bits"),
    pytest.param(parse_routes, '[{"type": "teleport", "dst": "default"}]', "JSON path $[0].type: expected a "
                 "route type", id="unknown-route-type"),
    pytest.param(parse_routes, '[{"flags": []}]', "JSON path $[0].dst: expected a value", id="missing-dst"),
    pytest.param(parse_routes, '[{"dst": "default", "metric": "x"}]', "$[0].metric: expected a number",
                 id="bad-metric"),
    pytest.param(parse_routes, '[{"dst": "default", "nexthops": []}]', "$[0].nexthops", id="empty-nexthops"),
    pytest.param(parse_rules, '[{"priority": 5, "src": "all", "action": "teleport"}]',
                 "JSON path $[0].action: expected a rule action", id="unknown-rule-action"),
    pytest.param(parse_rules, '[{"priority": 5, "src": "all"}]', "JSON path $[0]: expected a rule action",
                 id="no-action"),
    pytest.param(parse_rules, '[{"priority": 5, "src": "1.2.3", "table": "main"}]', "$[0].src: expected an "
                 "IPv4 address", id="bad-src"),
    pytest.param(parse_rules, '[{"priority": 5, "sport_start": 1, "table": "main"}]', "sport_end",
                 id="half-port-range"),
    pytest.param(parse_addrs, '[{"ifindex": 1, "addr_info": []}]', "$[0].ifname", id="no-ifname"),
    pytest.param(parse_addrs, '[{"ifindex": 1, "ifname": "e", "addr_info": [{"local": "1.2.3.4"}]}]',
                 "$[0].addr_info[0].prefixlen", id="no-prefixlen"),
])
def test_bad_json_names_the_path(parser: object, text: str, fragment: str) -> None:
    assert callable(parser)
    with pytest.raises(ParseError) as err:
        parser(text, "snap/ip-x.json")
    message = str(err.value)
    assert message.startswith("snap/ip-x.json:") and fragment in message


def test_broken_json_reports_its_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_rules('[\n{"priority": 1,\n', "ip-rule.json")
    assert err.value.line == 3


# ---------------------------------------------------------------------------------------------
# sysctl


@pytest.mark.parametrize(("text", "key", "value"), [
    pytest.param("net.ipv4.ip_forward = 1\n", "net.ipv4.ip_forward", "1", id="spaces"),
    pytest.param("net.ipv4.ip_forward=1", "net.ipv4.ip_forward", "1", id="no-spaces"),
    pytest.param("# comment\n\n; other\nnet.ipv4.conf.all.rp_filter = 2", "net.ipv4.conf.all.rp_filter", "2",
                 id="comments"),
    pytest.param("net/ipv4/conf/eth0.100/rp_filter = 1", "net.ipv4.conf.eth0.100.rp_filter", "1",
                 id="slash-separators"),
    pytest.param("net.ipv4.conf.eth0/100.rp_filter = 1", "net.ipv4.conf.eth0.100.rp_filter", "1",
                 id="sysctl-a-dotted-device"),
    pytest.param("net.ipv4.tcp_rmem = 4096\t131072\t6291456", "net.ipv4.tcp_rmem", "4096\t131072\t6291456",
                 id="vector"),
    pytest.param("a.b = 1\na.b = 2", "a.b", "2", id="last-wins"),
])
def test_parse_sysctl(text: str, key: str, value: str) -> None:
    assert parse_sysctl(text, "sysctl.txt").values[key] == value


def test_sysctl_bad_line_names_file_and_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_sysctl("a.b = 1\nsysctl: permission denied\n", "snap/sysctl.txt")
    assert str(err.value).startswith("snap/sysctl.txt:2: expected 'key = value'")
    assert parse_sysctl("a.b = 1\nnonsense\n", "s", lenient=True).values == {"a.b": "1"}


# ---------------------------------------------------------------------------------------------
# fib_add_ifaddr(): the routes an address brings


def _derived(*infos: dict[str, object], flags: tuple[str, ...] = ("UP", "LOWER_UP"),
             name: str = "eth0") -> set[str]:
    links = parse_addrs(_addrs(_link(name, 2, *infos, flags=flags)), "ip-addr.json")
    out = set()
    for r in kernel_routes(links):
        table = {RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local"}[r.table]
        out.add(f"{table} {r.type} {r.dst} src {r.prefsrc and r.prefsrc & 0xFF}")
    return out


@pytest.mark.parametrize(("infos", "flags", "expected"), [
    pytest.param([{"local": "10.0.0.1", "prefixlen": 24}], ("UP",), {
        "local local 10.0.0.1/32 src 1", "main unicast 10.0.0.0/24 src 1",
        "local broadcast 10.0.0.255/32 src 1"}, id="plain-24"),
    pytest.param([{"local": "10.0.0.1", "prefixlen": 24}, {"local": "10.0.0.9", "prefixlen": 24,
                                                           "secondary": True}], ("UP",), {
        "local local 10.0.0.1/32 src 1", "local local 10.0.0.9/32 src 1", "main unicast 10.0.0.0/24 src 1",
        "local broadcast 10.0.0.255/32 src 1"}, id="secondary-uses-primary-src"),
    pytest.param([{"local": "10.1.0.1", "prefixlen": 31}], ("UP",), {
        "local local 10.1.0.1/32 src 1", "main unicast 10.1.0.0/31 src 1"}, id="slash-31-no-broadcast"),
    pytest.param([{"local": "10.2.0.1", "prefixlen": 32}], ("UP",), {"local local 10.2.0.1/32 src 1"},
                 id="slash-32-local-only"),
    pytest.param([{"local": "10.3.0.1", "address": "10.3.0.2", "prefixlen": 32}], ("UP",), {
        "local local 10.3.0.1/32 src 1", "main unicast 10.3.0.2/32 src 1"}, id="peer-32"),
    pytest.param([{"local": "10.4.0.1", "prefixlen": 24, "noprefixroute": True}], ("UP",), {
        "local local 10.4.0.1/32 src 1", "local broadcast 10.4.0.255/32 src 1"}, id="noprefixroute"),
    pytest.param([{"local": "10.5.0.1", "prefixlen": 24, "broadcast": "10.5.0.77"}], ("UP",), {
        "local local 10.5.0.1/32 src 1", "main unicast 10.5.0.0/24 src 1",
        "local broadcast 10.5.0.77/32 src 1", "local broadcast 10.5.0.255/32 src 1"}, id="explicit-brd"),
    pytest.param([{"local": "10.6.0.1", "prefixlen": 24}], (), {"local local 10.6.0.1/32 src 1"},
                 id="admin-down-local-only"),
])
def test_fib_add_ifaddr(infos: list[dict[str, object]], flags: tuple[str, ...], expected: set[str]) -> None:
    assert _derived(*infos, flags=flags) == expected


def test_loopback_prefix_route_is_local_in_local_table() -> None:
    got = _derived({"local": "127.0.0.1", "prefixlen": 8, "scope": "host"},
                   flags=("LOOPBACK", "UP", "LOWER_UP"), name="lo")
    assert "local local 127.0.0.0/8 src 1" in got


def test_complete_routes_keeps_a_dump_with_local_table() -> None:
    links = parse_addrs(_addrs(_link("eth0", 2, {"local": "10.0.0.1", "prefixlen": 24})), "a")
    routes = parse_routes(json.dumps([{"type": "local", "dst": "10.0.0.1", "dev": "eth0", "table": "local",
                                       "flags": []}]), "r")
    assert complete_routes(routes, links) == routes
    main_only = parse_routes(json.dumps([{"dst": "10.0.0.0/24", "dev": "eth0", "protocol": "kernel",
                                          "scope": "link", "prefsrc": "10.0.0.1", "flags": []}]), "r")
    completed = complete_routes(main_only, links)
    assert sum(r.dst == Prefix.parse("10.0.0.0/24") for r in completed) == 1
    assert any(r.type == "local" and r.table == RT_TABLE_LOCAL for r in completed)


needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason=f"kernel cases not found at {CASES}")


def _case_dirs() -> list[Path]:
    return sorted(CASES.glob("*/seed-*")) if CASES.is_dir() else []


@needs_cases
@pytest.mark.parametrize("case", _case_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_kernel_routes_match_the_recorded_dumps(case: Path) -> None:
    """What we derive from ip-addr.json is what the kernel had installed (proto kernel).

    ``dead`` is ignored: iproute2 shows linkdown hops as dead too when the device has
    ignore_routes_with_linkdown (``fib_nexthop_info()``)."""
    from pktpath.cli.route_cmd import load_net_state
    from pktpath.engine.routing import format_route

    net = load_net_state(case)
    dumped = parse_routes((case / "ip-route.json").read_text(), "ip-route.json")
    want = {format_route(r).replace(" dead", "") for r in dumped if r.protocol == "kernel"}
    got = {format_route(r) for r in kernel_routes(net.links)}
    assert got == want
