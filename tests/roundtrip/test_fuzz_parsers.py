"""Fuzzing the parsers: whatever the input, a parser either returns a model or raises a
ParseError naming the file (and line) -- never another exception, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktpath.errors import ParseError
from pktpath.parse import conntrack_list, iproute_json, ipset_save, iptables_save, sysctl

# Words real dumps are made of, so the fuzzer reaches deep into the rule parser.
IPT_WORDS = ["*filter", "*nat", "*raw", "*mangle", ":INPUT", ":FORWARD", ":OUTPUT", ":PREROUTING", ":POSTROUTING",
             ":X", "ACCEPT", "DROP", "-", "[0:0]", "COMMIT", "-A", "-I", "-D", "-N", "-P", "-F", "-X", "INPUT",
             "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING", "X", "-s", "-d", "-i", "-o", "-p", "tcp", "udp",
             "icmp", "!", "-m", "-j", "-g", "--dport", "--sport", "80", "1:2", "10.0.0.0/8", "1.2.3.4", "eth0",
             "eth+", "state", "--state", "NEW", "conntrack", "--ctstate", "mark", "--mark", "0x1/0x1", "MARK",
             "--set-xmark", "DNAT", "--to-destination", "SNAT", "--to-source", "MASQUERADE", "--to-ports", "REJECT",
             "--reject-with", "tcp-reset", "LOG", "--log-prefix", '"a b"', "comment", "--comment", "multiport",
             "--dports", "80,443", "set", "--match-set", "s", "src,dst", "statistic", "--mode", "random",
             "--probability", "0.5", "addrtype", "--dst-type", "LOCAL", "-c", "1", "2", "#", "\n", "\n", "\n"]


def ipt_text() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(IPT_WORDS), max_size=60).map(lambda ws: " ".join(ws).replace(" \n ", "\n"))


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(
        ["default", "10.0.0.0/24", "1.2.3.4", "eth0", "lo", "local", "main", "inet", "unicast", "blackhole",
         "UP", "global", "host", "0x10", "0x10/0xff", "all", "100", "onlink"]))
    keys = st.sampled_from(["dst", "gateway", "dev", "table", "type", "ifname", "ifindex", "addr_info", "local",
                            "prefixlen", "family", "scope", "flags", "priority", "src", "fwmark", "action",
                            "nexthops", "metric", "prefsrc", "iif", "oif", "srclen", "dstlen", "secondary"])
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=6)), max_leaves=25)


PARSERS: list[tuple[str, Callable[[str, str], object], st.SearchStrategy[str]]] = [
    ("iptables-save", iptables_save.parse, ipt_text()),
    ("iptables-save-raw-text", iptables_save.parse, st.text(max_size=200)),
    ("ipset", ipset_save.parse, st.lists(st.sampled_from(
        ["create", "add", "s", "hash:ip", "hash:net", "hash:ip,port", "bitmap:port", "list:set", "family", "inet",
         "range", "0-1024", "10.0.0.1", "10.0.0.0/24", "10.0.0.1,tcp:80", "80", "nomatch", "timeout", "5", "-exist",
         "\n"]), max_size=40).map(" ".join)),
    ("ip-addr", iproute_json.parse_addrs, json_values().map(json.dumps)),
    ("ip-route", iproute_json.parse_routes, json_values().map(json.dumps)),
    ("ip-rule", iproute_json.parse_rules, json_values().map(json.dumps)),
    ("ip-json-text", iproute_json.parse_routes, st.text(max_size=100)),
    ("sysctl", sysctl.parse_sysctl, st.text(max_size=200)),
    ("conntrack", conntrack_list.parse, st.lists(st.sampled_from(
        ["tcp", "6", "100", "ESTABLISHED", "src=1.2.3.4", "dst=5.6.7.8", "sport=1", "dport=2", "[ASSURED]",
         "[UNREPLIED]", "mark=1", "zone=x", "udp", "icmp", "type=8", "id=1", "\n", "src=bad"]), max_size=30)
        .map(" ".join)),
]


@pytest.mark.parametrize("parser,texts", [(p[1], p[2]) for p in PARSERS], ids=[p[0] for p in PARSERS])
def test_parser_raises_only_parse_errors(parser: Callable[[str, str], object],
                                         texts: st.SearchStrategy[str]) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(texts)
    def check(text: str) -> None:
        try:
            parser(text, "fuzz.txt")
        except ParseError as e:
            assert e.source == "fuzz.txt"
            assert str(e)

    check()
