"""The IPv4 FIB: rules, tables, input/output routes, source selection, MASQUERADE's address.

Every expectation is what Linux 6.18 answers (``ip route get`` in a scratch namespace was
used to settle the less obvious ones: the reverse-path lookup's iif, 0.x.y.z being unicast,
``ip route get`` defaulting to UDP, a gateway that is one of our own addresses).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import pytest

from pktpath.engine.routing import (
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    Flow,
    RouteResult,
    inet_addr_type,
    inet_select_addr,
    masquerade_source,
    route_alternatives,
    route_input,
    route_output,
)
from pktpath.model.addr import int_to_ip, ip_to_int
from pktpath.model.net import DEFAULT_RULES, FibRule, NetState
from pktpath.parse.iproute_json import complete_routes, parse_addrs, parse_routes, parse_rules
from pktpath.parse.sysctl import parse_sysctl

IP = ip_to_int
UP = ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]

# lo 127.0.0.1/8; eth0 10.0.0.1/24 + secondary 10.0.0.9/24 + 192.168.50.1/24; eth1 10.1.0.1/24;
# eth2 up without addresses; eth3 admin-down 10.5.0.1/24.
BASE_LINKS: list[dict[str, object]] = [
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "link_type": "loopback",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    {"ifindex": 2, "ifname": "eth0", "flags": UP, "addr_info": [
        {"family": "inet", "local": "10.0.0.1", "prefixlen": 24, "scope": "global"},
        {"family": "inet", "local": "192.168.50.1", "prefixlen": 24, "scope": "global"},
        {"family": "inet", "local": "10.0.0.9", "prefixlen": 24, "scope": "global", "secondary": True}]},
    {"ifindex": 3, "ifname": "eth1", "flags": UP, "addr_info": [
        {"family": "inet", "local": "10.1.0.1", "prefixlen": 24, "scope": "global"}]},
    {"ifindex": 4, "ifname": "eth2", "flags": UP, "addr_info": []},
    {"ifindex": 5, "ifname": "eth3", "flags": ["BROADCAST", "MULTICAST"], "addr_info": [
        {"family": "inet", "local": "10.5.0.1", "prefixlen": 24, "scope": "global"}]},
]
Routes = list[dict[str, object]]
BASE_ROUTES: Routes = [
    {"dst": "default", "gateway": "10.0.0.254", "dev": "eth0", "flags": []},
    {"dst": "10.9.0.0/16", "gateway": "10.1.0.254", "dev": "eth1", "flags": []},
]
FORWARDING = "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.forwarding = 1\nnet.ipv4.conf.default.forwarding = 1\n"
TABLE_100_VIA_ETH1: Routes = [{"dst": "default", "gateway": "10.1.0.254", "dev": "eth1", "table": "100", "flags": []}]


def make_net(routes: Sequence[object] | None = None, rules: list[str] | None = None,
             sysctl: str = FORWARDING, links: Sequence[object] | None = None) -> NetState:
    """A NetState from ``ip -j``-shaped dicts; ``rules`` in a tiny ``ip rule`` syntax."""
    parsed_links = parse_addrs(json.dumps(list(links if links is not None else BASE_LINKS)), "ip-addr.json")
    parsed_routes = parse_routes(json.dumps(list(BASE_ROUTES if routes is None else routes)), "ip-route.json")
    return NetState(links=parsed_links, routes=complete_routes(parsed_routes, parsed_links),
                    rules=_rules(rules) if rules is not None else DEFAULT_RULES,
                    sysctls=parse_sysctl(sysctl, "sysctl.txt"))


def _rules(rules: list[str]) -> tuple[FibRule, ...]:
    """``PRIO key value ...`` lines -> ip -j rule objects, with the three default rules."""
    objs: list[dict[str, object]] = [{"priority": 0, "src": "all", "table": "local"}]
    for line in rules:
        words = line.split()
        obj: dict[str, object] = {"priority": int(words[0]), "src": "all"}
        i = 1
        while i < len(words):
            key = words[i]
            if key in ("not", "nop", "unresolved", "iif_detached", "oif_detached", "l3mdev"):
                obj[key] = None
                i += 1
                continue
            value = words[i + 1]
            if key in ("src", "dst") and "/" in value:
                obj[key], obj[key + "len"] = value.split("/")[0], int(value.split("/")[1])
            elif key in ("goto", "suppress_prefixlen", "uid_start", "uid_end", "sport", "dport",
                         "sport_start", "sport_end", "dport_start", "dport_end"):
                obj[key] = int(value)
            else:
                obj[key] = value
            i += 2
        objs.append(obj)
    objs += [{"priority": 32766, "src": "all", "table": "main"},
             {"priority": 32767, "src": "all", "table": "default"}]
    objs.sort(key=lambda o: int(str(o["priority"])))
    return parse_rules(json.dumps(objs), "ip-rule.json")


def out(net: NetState, dst: str, **kw: object) -> RouteResult:
    return route_output(net, _flow(dst, kw))


def inp(net: NetState, dst: str, src: str, iif: str, **kw: object) -> RouteResult:
    return route_input(net, _flow(dst, dict(kw, src=src, iif=iif)))


def _flow(dst: str, kw: dict[str, object]) -> Flow:
    src = kw.pop("src", None)
    flow = Flow(dst=IP(dst), src=IP(str(src)) if src else 0)
    return replace(flow, **kw)  # type: ignore[arg-type]


def summary(res: RouteResult) -> str:
    """``type dev via gw src prefsrc`` or the error name."""
    if res.error:
        return res.error
    text = f"{res.type} {res.dev}"
    text += f" via {int_to_ip(res.gateway)}" if res.gateway else ""
    return text + (f" src {int_to_ip(res.prefsrc)}" if res.prefsrc else "")


# ---------------------------------------------------------------------------------------------
# Rule selectors (fib_rule_match + fib4_rule_match): matched -> table 100 -> eth1, else main -> eth0

SELECTORS = [
    ("from-match", "100 src 10.0.0.0/24 table 100", dict(src="10.0.0.1"), True),
    ("from-other", "100 src 10.0.0.0/24 table 100", dict(src="10.1.0.1"), False),
    ("to-match", "100 dst 8.8.8.0/24 table 100", {}, True),
    ("to-other", "100 dst 9.9.9.0/24 table 100", {}, False),
    ("tos-match", "100 tos 0x10 table 100", dict(tos=0x10), True),
    ("tos-ecn-bits-ignored", "100 tos 0x10 table 100", dict(tos=0x12), True),
    ("tos-high-dscp-bits-ignored", "100 tos 0x10 table 100", dict(tos=0x30), True),
    ("tos-other", "100 tos 0x10 table 100", dict(tos=0x08), False),
    ("fwmark-exact", "100 fwmark 0x4 table 100", dict(mark=4), True),
    ("fwmark-no-mask-means-all-bits", "100 fwmark 0x4 table 100", dict(mark=5), False),
    ("fwmark-masked", "100 fwmark 0x4 fwmask 0x4 table 100", dict(mark=5), True),
    ("fwmark-zero-masked-match", "100 fwmark 0 fwmask 0x1 table 100", dict(mark=2), True),
    ("fwmark-zero-masked-other", "100 fwmark 0 fwmask 0x1 table 100", dict(mark=3), False),
    ("iif-lo-matches-output", "100 iif lo table 100", {}, True),
    ("iif-eth1-not-output", "100 iif eth1 table 100", {}, False),
    ("iif-detached-never", "100 iif gone iif_detached table 100", {}, False),
    ("oif-match", "100 oif eth1 table 100", dict(oif="eth1"), True),
    ("oif-without-oif", "100 oif eth1 table 100", {}, False),
    ("uidrange-match", "100 uid_start 1000 uid_end 1000 table 100", dict(uid=1000), True),
    ("uidrange-other", "100 uid_start 1000 uid_end 1000 table 100", dict(uid=0), False),
    ("ipproto-match", "100 ipproto tcp table 100", dict(proto=6), True),
    ("ipproto-other", "100 ipproto tcp table 100", dict(proto=17), False),
    ("sport-range", "100 sport_start 1000 sport_end 2000 table 100", dict(sport=1500), True),
    ("sport-outside", "100 sport_start 1000 sport_end 2000 table 100", dict(sport=80), False),
    ("dport-single", "100 dport 53 table 100", dict(dport=53), True),
    ("dport-other", "100 dport 53 table 100", dict(dport=54), False),
    ("not-inverts-nomatch", "100 not src 10.0.0.0/24 table 100", dict(src="10.1.0.1"), True),
    ("not-inverts-match", "100 not src 10.0.0.0/24 table 100", dict(src="10.0.0.1"), False),
    ("not-inverts-whole-rule", "100 not src 10.0.0.0/24 fwmark 0x1 table 100", dict(src="10.0.0.1"), True),
    ("l3mdev-without-vrf", "100 l3mdev", {}, False),
]


@pytest.mark.parametrize(("rule", "flow", "matched"), [pytest.param(r, f, m, id=i) for i, r, f, m in SELECTORS])
def test_rule_selectors(rule: str, flow: dict[str, object], matched: bool) -> None:
    net = make_net(BASE_ROUTES + TABLE_100_VIA_ETH1, [rule])
    res = out(net, "8.8.8.8", **flow)
    assert res.dev == ("eth1" if matched else "eth0"), res.steps


# ---------------------------------------------------------------------------------------------
# Rule actions and what ends the walk (fib_rules_lookup, fib4_rule_action, fib4_rule_suppress)

ACTIONS = [
    ("unreachable-rule", ["100 action unreachable"], [], "no-route"),
    ("prohibit-rule", ["100 action prohibit"], [], "prohibited"),
    ("blackhole-rule", ["100 action blackhole"], [], "blackhole"),
    ("missing-table-continues", ["100 table 300"], [], "unicast eth0"),
    ("goto-skips-rules-between", ["100 goto 200", "150 action blackhole", "200 table 100"], [], "unicast eth1"),
    ("goto-target-rechecked", ["100 goto 200", "150 action blackhole", "200 fwmark 0x9 table 100"], [],
     "unicast eth0"),
    ("goto-unresolved-continues", ["100 goto 120 unresolved", "150 table 100"], [], "unicast eth1"),
    ("nop-continues", ["100 nop", "150 table 100"], [], "unicast eth1"),
    ("throw-route-continues", ["100 table 100"], [{"type": "throw", "dst": "8.0.0.0/8", "table": "100"}],
     "unicast eth0"),
    ("unreachable-route-stops", ["100 table 100"],
     [{"type": "unreachable", "dst": "8.0.0.0/8", "table": "100"}], "unreachable"),
    ("prohibit-route-stops", ["100 table 100"], [{"type": "prohibit", "dst": "8.0.0.0/8", "table": "100"}],
     "prohibited"),
    ("blackhole-route-stops", ["100 table 100"], [{"type": "blackhole", "dst": "8.0.0.0/8", "table": "100"}],
     "blackhole"),
    ("suppress-prefixlength-0-skips-default", ["100 table main suppress_prefixlen 0", "150 table 100"],
     TABLE_100_VIA_ETH1, "unicast eth1"),
    ("suppress-keeps-longer-prefix", ["100 table main suppress_prefixlen 0", "150 table 100"],
     TABLE_100_VIA_ETH1 + [{"dst": "8.8.0.0/16", "gateway": "10.0.0.253", "dev": "eth0"}], "unicast eth0"),
    ("suppress-ifgroup", ["100 table main suppress_ifgroup 0", "150 table 100"], TABLE_100_VIA_ETH1,
     "unicast eth1"),
]


@pytest.mark.parametrize(("rules", "extra_routes", "expected"),
                         [pytest.param(r, x, e, id=i) for i, r, x, e in ACTIONS])
def test_rule_actions(rules: list[str], extra_routes: list[dict[str, object]], expected: str) -> None:
    net = make_net(BASE_ROUTES + TABLE_100_VIA_ETH1 + extra_routes, rules)
    res = out(net, "8.8.8.8", src="10.0.0.1")
    assert (res.error or f"{res.type} {res.dev}") == expected, res.steps


def test_no_rule_answers_is_network_unreachable() -> None:
    rules = parse_rules(json.dumps([{"priority": 0, "src": "all", "table": "local"},
                                    {"priority": 5, "src": "all", "table": "300"}]), "r")
    net = replace(make_net(), rules=rules)
    assert out(net, "8.8.8.8").error == "no-route"


def test_custom_rules_unmerge_local_and_main() -> None:
    """Without custom rules main and local share one trie: a longer main prefix beats local."""
    routes = BASE_ROUTES + [{"dst": "127.1.0.0/16", "gateway": "10.0.0.200", "dev": "eth0"}]
    assert summary(out(make_net(routes), "127.1.0.1")) == "unicast eth0 via 10.0.0.200 src 10.0.0.1"
    assert out(make_net(routes, ["100 src 1.1.1.1/32 table 5"]), "127.1.0.1").type == "local"


def test_merged_tables_report_main_custom_rules_report_local() -> None:
    assert out(make_net(), "10.0.0.1").table == 254
    assert out(make_net(rules=["100 src 1.1.1.1/32 table 5"]), "10.0.0.1").table == 255


def test_error_in_main_does_not_fall_through_to_default() -> None:
    routes = BASE_ROUTES + [{"type": "blackhole", "dst": "8.8.0.0/16"},
                            {"dst": "8.8.0.0/16", "gateway": "10.1.0.254", "dev": "eth1", "table": "default"}]
    assert out(make_net(routes), "8.8.8.8").error == "blackhole"


# ---------------------------------------------------------------------------------------------
# fib_table_lookup: prefix length, TOS, metric, dead/linkdown hops, oif

LOOKUPS = [
    ("longest-prefix", [], "10.9.3.4", {}, "unicast eth1 via 10.1.0.254"),
    ("tos-route-for-matching-tos", [{"dst": "8.8.0.0/16", "tos": "0x10", "gateway": "10.1.0.254", "dev": "eth1"}],
     "8.8.8.8", dict(tos=0x10), "unicast eth1 via 10.1.0.254"),
    ("tos-route-not-for-other-tos", [{"dst": "8.8.0.0/16", "tos": "0x10", "gateway": "10.1.0.254",
                                      "dev": "eth1"}], "8.8.8.8", {}, "unicast eth0 via 10.0.0.254"),
    ("lowest-metric", [{"dst": "8.8.0.0/16", "metric": 10, "gateway": "10.1.0.254", "dev": "eth1"},
                       {"dst": "8.8.0.0/16", "metric": 5, "gateway": "10.0.0.253", "dev": "eth0"}],
     "8.8.8.8", {}, "unicast eth0 via 10.0.0.253"),
    ("dead-hop-skipped", [{"dst": "8.8.0.0/16", "gateway": "10.1.0.254", "dev": "eth1", "flags": ["dead"]}],
     "8.8.8.8", {}, "unicast eth0 via 10.0.0.254"),
    ("linkdown-used-by-default", [{"dst": "8.8.0.0/16", "gateway": "10.1.0.254", "dev": "eth1",
                                   "flags": ["linkdown"]}], "8.8.8.8", {}, "unicast eth1 via 10.1.0.254"),
    ("oif-skips-other-devices", [], "10.9.3.4", dict(oif="eth0"), "unicast eth0 via 10.0.0.254"),
    ("own-address-gateway-unused", [{"dst": "8.8.0.0/16", "gateway": "10.1.0.1", "dev": "eth1"}],
     "8.8.8.8", {}, "unicast eth1 src 10.1.0.1"),
    ("onlink-gateway", [{"dst": "8.8.0.0/16", "gateway": "172.31.0.1", "dev": "eth1", "flags": ["onlink"]}],
     "8.8.8.8", {}, "unicast eth1 via 172.31.0.1 src 10.1.0.1"),
]


@pytest.mark.parametrize(("routes", "dst", "flow", "expected"),
                         [pytest.param(r, d, f, e, id=i) for i, r, d, f, e in LOOKUPS])
def test_table_lookup(routes: list[dict[str, object]], dst: str, flow: dict[str, object], expected: str) -> None:
    res = out(make_net(BASE_ROUTES + routes), dst, **flow)
    assert summary(res).startswith(expected), res.steps


def test_linkdown_skipped_with_ignore_routes_with_linkdown() -> None:
    routes = BASE_ROUTES + [{"dst": "8.8.0.0/16", "gateway": "10.1.0.254", "dev": "eth1", "flags": ["linkdown"]}]
    net = make_net(routes, sysctl=FORWARDING + "net.ipv4.conf.eth1.ignore_routes_with_linkdown = 1\n")
    assert out(net, "8.8.8.8").dev == "eth0"


def test_multipath_hops_and_weights() -> None:
    routes = BASE_ROUTES + [{"dst": "8.8.0.0/16", "nexthops": [
        {"gateway": "10.0.0.250", "dev": "eth0", "weight": 3, "flags": []},
        {"gateway": "10.1.0.250", "dev": "eth1", "weight": 1, "flags": []},
        {"gateway": "10.1.0.251", "dev": "eth1", "weight": 5, "flags": ["dead"]}]}]
    net = make_net(routes)
    res = out(net, "8.8.8.8")
    assert [(h.gateway and int_to_ip(h.gateway), p) for h, p in res.hops] == [("10.0.0.250", 0.75),
                                                                            ("10.1.0.250", 0.25)]
    alternatives = {summary(r) for r in route_alternatives(net, _flow("8.8.8.8", {}), res)}
    assert alternatives == {"unicast eth0 via 10.0.0.250 src 10.0.0.1", "unicast eth1 via 10.1.0.250 src 10.1.0.1"}
    assert summary(out(net, "8.8.8.8", oif="eth1")) == "unicast eth1 via 10.1.0.250 src 10.1.0.1"


# ---------------------------------------------------------------------------------------------
# Output routes (ip_route_output_key_hash_rcu)

OUTPUT = [
    ("source-from-gateway-subnet", {}, "8.8.8.8", {}, "unicast eth0 via 10.0.0.254 src 10.0.0.1"),
    ("source-other-primary-in-gateway-subnet",
     [{"dst": "8.8.0.0/16", "gateway": "192.168.50.254", "dev": "eth0"}], "8.8.8.8", {},
     "unicast eth0 via 192.168.50.254 src 192.168.50.1"),
    ("connected-route-prefsrc", {}, "192.168.50.77", {}, "unicast eth0 src 192.168.50.1"),
    ("device-route-without-prefsrc-first-primary", [{"dst": "8.7.0.0/16", "dev": "eth0", "scope": "link"}],
     "8.7.1.1", {}, "unicast eth0 src 10.0.0.1"),
    ("route-src-wins", [{"dst": "8.7.0.0/16", "gateway": "10.0.0.254", "dev": "eth0", "prefsrc": "10.1.0.1"}],
     "8.7.1.1", {}, "unicast eth0 via 10.0.0.254 src 10.1.0.1"),
    ("given-source-kept", {}, "8.8.8.8", dict(src="10.1.0.1"), "unicast eth0 via 10.0.0.254 src 10.1.0.1"),
    ("non-local-source", {}, "8.8.8.8", dict(src="10.1.0.77"), "no-route"),
    ("secondary-address-is-local", {}, "8.8.8.8", dict(src="10.0.0.9"), "unicast eth0 via 10.0.0.254"),
    ("source-on-down-device-is-local", {}, "8.8.8.8", dict(src="10.5.0.1"), "unicast eth0"),
    ("local-destination-via-lo", {}, "10.0.0.1", {}, "local lo src 10.0.0.1"),
    ("secondary-local-takes-primary-src", {}, "10.0.0.9", {}, "local lo src 10.0.0.1"),
    ("zero-destination-is-loopback", {}, "0.0.0.0", {}, "local lo src 127.0.0.1"),
    ("zeronet-is-unicast-since-5.3", {}, "0.1.2.3", {}, "unicast eth0 via 10.0.0.254"),
    ("subnet-broadcast", {}, "10.0.0.255", {}, "broadcast eth0 src 10.0.0.1"),
    ("limited-broadcast-no-gateway", {}, "255.255.255.255", {}, "broadcast eth0 src 10.0.0.1"),
    ("multicast-default-route-no-gateway", {}, "239.1.2.3", {}, "multicast eth0 src 10.0.0.1"),
    ("oif-no-route-is-on-link", [], "8.8.8.8", dict(oif="eth1"), "unicast eth1 src 10.1.0.1"),
    ("oif-blackhole-is-on-link", [{"type": "blackhole", "dst": "8.8.0.0/16"}], "8.8.8.8", dict(oif="eth1"),
     "unicast eth1 src 10.1.0.1"),
    ("oif-without-address-borrows", [], "8.8.8.8", dict(oif="eth2"), "unicast eth2 src 10.0.0.1"),
    ("oif-down", {}, "8.8.8.8", dict(oif="eth3"), "no-route"),
    ("loopback-source-cannot-leave", {}, "8.8.8.8", dict(src="127.0.0.1"), "invalid-argument"),
    ("multicast-source", {}, "8.8.8.8", dict(src="224.0.0.1"), "invalid-argument"),
    ("broadcast-from-local-source-skips-lookup", [], "255.255.255.255", dict(src="10.1.0.1"),
     "broadcast eth1 src 10.1.0.1"),
]


@pytest.mark.parametrize(("routes", "dst", "flow", "expected"),
                         [pytest.param(r, d, f, e, id=i) for i, r, d, f, e in OUTPUT])
def test_output(routes: object, dst: str, flow: dict[str, object], expected: str) -> None:
    extra: list[object] = routes if isinstance(routes, list) else []
    res = out(make_net([*BASE_ROUTES, *extra]), dst, **flow)
    assert summary(res).startswith(expected), res.steps


def test_output_uid_selects_uidrange_rule() -> None:
    net = make_net(BASE_ROUTES + TABLE_100_VIA_ETH1, ["100 uid_start 1000 uid_end 1000 table 100"])
    assert out(net, "8.8.8.8", uid=1000).dev == "eth1"
    assert out(net, "8.8.8.8").dev == "eth0"


def test_multicast_answer_has_no_table_gateway() -> None:
    res = out(make_net(), "239.1.2.3")
    assert res.gateway is None and res.type == "multicast"


# ---------------------------------------------------------------------------------------------
# Input routes (ip_route_input_slow, fib_validate_source)

NO_DEFAULT: Routes = [{"dst": "10.9.0.0/16", "gateway": "10.1.0.254", "dev": "eth1", "flags": []},
              {"type": "blackhole", "dst": "10.66.0.0/16"}]
INPUT = [
    ("forward", NO_DEFAULT, FORWARDING, "10.9.1.1", "10.0.0.5", "eth0", "unicast eth1 via 10.1.0.254"),
    ("local-delivery", NO_DEFAULT, FORWARDING, "10.1.0.1", "10.0.0.5", "eth0", "local lo"),
    ("local-delivery-on-down-address", NO_DEFAULT, FORWARDING, "10.5.0.1", "10.0.0.5", "eth0", "local lo"),
    ("subnet-broadcast", NO_DEFAULT, FORWARDING, "10.0.0.255", "10.0.0.5", "eth0", "broadcast lo"),
    ("limited-broadcast", NO_DEFAULT, FORWARDING, "255.255.255.255", "10.0.0.5", "eth0", "broadcast lo"),
    ("limited-broadcast-from-zero", NO_DEFAULT, FORWARDING, "255.255.255.255", "0.0.0.0", "eth0",
     "broadcast lo"),
    ("no-route", NO_DEFAULT, FORWARDING, "8.8.8.8", "10.0.0.5", "eth0", "no-route"),
    ("blackhole", NO_DEFAULT, FORWARDING, "10.66.1.1", "10.0.0.5", "eth0", "blackhole"),
    ("forwarding-off-no-route", NO_DEFAULT, "", "8.8.8.8", "10.0.0.5", "eth0", "unreachable"),
    ("forwarding-off-blackhole", NO_DEFAULT, "", "10.66.1.1", "10.0.0.5", "eth0", "unreachable"),
    ("forwarding-off-unicast", NO_DEFAULT, "", "10.9.1.1", "10.0.0.5", "eth0", "unreachable"),
    ("forwarding-off-local-still-delivered", NO_DEFAULT, "", "10.1.0.1", "10.0.0.5", "eth0", "local lo"),
    ("source-zero", NO_DEFAULT, FORWARDING, "10.9.1.1", "0.0.0.0", "eth0", "invalid-argument"),
    ("source-multicast", NO_DEFAULT, FORWARDING, "10.9.1.1", "224.1.1.1", "eth0", "invalid-argument"),
    ("source-broadcast", NO_DEFAULT, FORWARDING, "10.9.1.1", "255.255.255.255", "eth0", "invalid-argument"),
    ("destination-loopback", NO_DEFAULT, FORWARDING, "127.0.0.1", "10.0.0.5", "eth0", "invalid-argument"),
    ("destination-loopback-route-localnet", NO_DEFAULT, FORWARDING + "net.ipv4.conf.eth0.route_localnet = 1",
     "127.0.0.1", "10.0.0.5", "eth0", "local lo"),
    ("source-loopback", NO_DEFAULT, FORWARDING, "10.9.1.1", "127.0.0.1", "eth0", "invalid-argument"),
    ("source-is-ours", NO_DEFAULT, FORWARDING, "10.0.0.1", "10.1.0.1", "eth0", "invalid-argument"),
    ("source-is-ours-accept-local", NO_DEFAULT, FORWARDING + "net.ipv4.conf.eth0.accept_local = 1",
     "10.0.0.1", "10.1.0.1", "eth0", "local lo"),
    ("rp-filter-strict-wrong-interface", NO_DEFAULT, FORWARDING + "net.ipv4.conf.all.rp_filter = 1",
     "10.0.0.1", "10.9.1.1", "eth0", "invalid-argument"),
    ("rp-filter-strict-right-interface", NO_DEFAULT, FORWARDING + "net.ipv4.conf.all.rp_filter = 1",
     "10.1.0.1", "10.9.1.1", "eth1", "local lo"),
    ("rp-filter-loose-other-interface", NO_DEFAULT, FORWARDING + "net.ipv4.conf.eth0.rp_filter = 2",
     "10.0.0.1", "10.9.1.1", "eth0", "local lo"),
    ("rp-filter-loose-no-route-back", NO_DEFAULT, FORWARDING + "net.ipv4.conf.eth0.rp_filter = 2",
     "10.0.0.1", "8.8.8.8", "eth0", "invalid-argument"),
    ("rp-filter-all-strict-beats-device-off", NO_DEFAULT, FORWARDING + "net.ipv4.conf.all.rp_filter = 1\n"
     "net.ipv4.conf.eth0.rp_filter = 0", "10.0.0.1", "10.9.1.1", "eth0", "invalid-argument"),
    ("rp-filter-max-is-loose", NO_DEFAULT, FORWARDING + "net.ipv4.conf.all.rp_filter = 2\n"
     "net.ipv4.conf.eth0.rp_filter = 1", "10.0.0.1", "10.9.1.1", "eth0", "local lo"),
    ("multicast-all-hosts", NO_DEFAULT, FORWARDING, "224.0.0.1", "10.0.0.5", "eth0", "multicast lo"),
    ("multicast-not-joined", NO_DEFAULT, FORWARDING, "239.1.1.1", "10.0.0.5", "eth0", "invalid-argument"),
    ("admin-down-iif-still-answers", NO_DEFAULT, FORWARDING, "10.9.1.1", "10.5.0.7", "eth3",
     "unicast eth1 via 10.1.0.254"),
    ("zeronet-destination-is-unicast", NO_DEFAULT + [{"dst": "0.0.0.0/8", "dev": "eth1", "scope": "link"}],
     FORWARDING, "0.1.2.3", "10.0.0.5", "eth0", "unicast eth1"),
    ("unknown-iif", NO_DEFAULT, FORWARDING, "10.9.1.1", "10.0.0.5", "nosuch", "no-device"),
]


@pytest.mark.parametrize(("routes", "sysctl", "dst", "src", "iif", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in INPUT])
def test_input(routes: list[dict[str, object]], sysctl: str, dst: str, src: str, iif: str,
               expected: str) -> None:
    res = inp(make_net(routes, sysctl=sysctl), dst, src, iif)
    assert summary(res).startswith(expected), res.steps


def test_input_ignores_uid() -> None:
    """Arriving packets carry uid 0 (sock_net_uid(net, NULL)) whatever the query says."""
    net = make_net(NO_DEFAULT, ["100 uid_start 1000 uid_end 1000 action blackhole"])
    assert inp(net, "10.9.1.1", "10.0.0.5", "eth0", uid=1000).dev == "eth1"
    net = make_net(NO_DEFAULT, ["100 uid_start 0 uid_end 0 action blackhole"])
    assert inp(net, "10.9.1.1", "10.0.0.5", "eth0").error == "blackhole"


def test_custom_rules_refuse_a_broadcast_source() -> None:
    """With custom rules, the full reverse lookup runs even with rp_filter 0, and a source
    covered by a broadcast route is refused."""
    assert inp(make_net(NO_DEFAULT), "10.0.0.1", "10.1.0.255", "eth0").type == "local"
    net = make_net(NO_DEFAULT, ["100 src 1.1.1.1/32 table 5"])
    assert inp(net, "10.0.0.1", "10.1.0.255", "eth0").error == "invalid-argument"


@pytest.mark.parametrize(("rule_iif", "dst", "expected"), [
    pytest.param("lo", "10.0.0.1", "invalid-argument", id="local-delivery-reverse-iif-is-lo"),
    pytest.param("lo", "10.1.0.9", "unicast eth1", id="forward-reverse-iif-is-not-lo"),
    pytest.param("eth0", "10.0.0.1", "local lo", id="arrival-device-is-not-the-reverse-iif"),
    pytest.param("eth1", "10.1.0.9", "invalid-argument", id="forward-reverse-iif-is-output-device"),
])
def test_reverse_lookup_iif(rule_iif: str, dst: str, expected: str) -> None:
    """``__fib_validate_source()`` looks up the way back with iif = the forward route's
    output device, or ``lo`` for local delivery -- never the arrival device."""
    routes = [{"type": "broadcast", "dst": "10.0.0.0/24", "dev": "eth0", "table": "100"}]
    net = make_net(routes, [f"100 iif {rule_iif} table 100"])
    assert summary(inp(net, dst, "10.0.0.5", "eth0")).startswith(expected)


def test_src_valid_mark_carries_the_mark_into_the_reverse_lookup() -> None:
    routes = NO_DEFAULT + [{"type": "prohibit", "dst": "10.0.0.0/24", "table": "100"}]
    strict = FORWARDING + "net.ipv4.conf.all.rp_filter = 1\n"
    net = make_net(routes, ["100 fwmark 0x7 table 100"], sysctl=strict)
    assert inp(net, "10.1.0.1", "10.0.0.5", "eth0", mark=7).type == "local"
    net = make_net(routes, ["100 fwmark 0x7 table 100"], sysctl=strict + "net.ipv4.conf.eth0.src_valid_mark = 1")
    assert inp(net, "10.1.0.1", "10.0.0.5", "eth0", mark=7).error == "invalid-argument"


# ---------------------------------------------------------------------------------------------
# inet_select_addr and MASQUERADE (nf_nat_masquerade_ipv4)

LINK_SCOPE_ONLY = BASE_LINKS + [{"ifindex": 6, "ifname": "eth4", "flags": UP, "addr_info": [
    {"family": "inet", "local": "169.254.1.1", "prefixlen": 16, "scope": "link"}]}]
MASQUERADE = [
    ("nexthop-in-second-primary-subnet", BASE_LINKS, "eth0", "192.168.50.254", "192.168.50.1"),
    ("nexthop-in-first-primary-subnet", BASE_LINKS, "eth0", "10.0.0.254", "10.0.0.1"),
    ("nexthop-outside-every-subnet-first-primary", BASE_LINKS, "eth0", "8.8.8.8", "10.0.0.1"),
    ("secondary-never-chosen", BASE_LINKS, "eth0", "10.0.0.77", "10.0.0.1"),
    ("no-address-borrows-other-device", BASE_LINKS, "eth2", "8.8.8.8", "10.0.0.1"),
    ("link-scope-only-borrows", LINK_SCOPE_ONLY, "eth4", "169.254.9.9", "10.0.0.1"),
    ("no-address-anywhere", [BASE_LINKS[0], BASE_LINKS[3]], "eth2", "8.8.8.8", None),
]


@pytest.mark.parametrize(("links", "dev", "nexthop", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in MASQUERADE])
def test_masquerade_source(links: list[dict[str, object]], dev: str, nexthop: str, expected: str | None) -> None:
    net = make_net(links=links)
    got = masquerade_source(net, dev, IP(nexthop))
    assert (int_to_ip(got) if got is not None else None) == expected


@pytest.mark.parametrize(("dev", "dst", "scope", "expected"), [
    pytest.param("eth4", "0.0.0.0", RT_SCOPE_LINK, "169.254.1.1", id="link-scope-allowed-at-link"),
    pytest.param("lo", "0.0.0.0", RT_SCOPE_HOST, "127.0.0.1", id="host-scope-allowed-at-host"),
    pytest.param("lo", "0.0.0.0", RT_SCOPE_LINK, "10.0.0.1", id="host-scope-refused-at-link"),
    pytest.param("eth2", "0.0.0.0", RT_SCOPE_LINK, "10.0.0.1", id="fallback-skips-lo-host-address"),
    pytest.param("eth0", "192.168.50.7", RT_SCOPE_UNIVERSE, "192.168.50.1", id="dst-subnet"),
])
def test_inet_select_addr(dev: str, dst: str, scope: int, expected: str) -> None:
    assert int_to_ip(inet_select_addr(make_net(links=LINK_SCOPE_ONLY), dev, IP(dst), scope)) == expected


def test_route_localnet_makes_host_addresses_link_scope() -> None:
    net = make_net(sysctl=FORWARDING + "net.ipv4.conf.lo.route_localnet = 1\n")
    assert int_to_ip(inet_select_addr(net, "lo", 0, RT_SCOPE_LINK)) == "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# inet_addr_type (-m addrtype)

ADDR_TYPES = [
    ("local", "10.0.0.1", None, "LOCAL"),
    ("local-secondary", "10.0.0.9", None, "LOCAL"),
    ("loopback-net", "127.3.4.5", None, "LOCAL"),
    ("subnet-broadcast", "10.0.0.255", None, "BROADCAST"),
    ("zero", "0.0.0.0", None, "BROADCAST"),
    ("limited-broadcast", "255.255.255.255", None, "BROADCAST"),
    ("multicast", "224.0.0.5", None, "MULTICAST"),
    ("unicast", "8.8.8.8", None, "UNICAST"),
    ("zeronet-unicast", "0.1.2.3", None, "UNICAST"),
    ("local-on-its-device", "10.0.0.1", "eth0", "LOCAL"),
    ("local-other-device", "10.0.0.1", "eth1", "UNICAST"),
    ("error-routes-are-unicast", "10.66.1.1", None, "UNICAST"),
]


@pytest.mark.parametrize(("addr", "dev", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ADDR_TYPES])
def test_inet_addr_type(addr: str, dev: str | None, expected: str) -> None:
    net = make_net(NO_DEFAULT)
    assert inet_addr_type(net, IP(addr), dev) == expected
