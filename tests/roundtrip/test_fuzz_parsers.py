"""Fuzzing the parsers: whatever the input, a parser either returns a model or raises a
ParseError naming the file (and line) -- never another exception, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktpath.errors import ParseError
from pktpath.parse import conntrack_list, iproute_json, ipset_save, iptables_save, sysctl

EXAMPLES = int(os.environ.get("PKTPATH_FUZZ_EXAMPLES", "300"))  # raise it for a long fuzzing run

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


# Whole option groups (with odd values), as real rules are built: they reach the extensions' parsers.
VALUES = ["0", "1", "65535", "70000", "0x10", "0x1/0x3", "abc", "1:2", "2:1", "10.0.0.1", "10.0.0.0/33", "-1",
          "0.5", "2.0", "NEW,BOGUS", "eth0", ""]
FRAGMENTS = [f"{head} {v}" for head in (
    "-p tcp -m tcp --dport", "-p udp -m udp --sport", "-m statistic --mode random --probability",
    "-m statistic --mode nth --every", "-m mark --mark", "-m connmark --mark", "-m state --state",
    "-m conntrack --ctstate", "-m conntrack --ctorigdst", "-m length --length", "-m ttl --ttl-gt",
    "-m iprange --src-range", "-m limit --limit", "-m hashlimit --hashlimit-above", "-m recent --name",
    "-m owner --uid-owner", "-m u32 --u32", "-m string --algo bm --string", "-m time --timestart",
    "-m tos --tos", "-m dscp --dscp", "-m pkttype --pkt-type", "-m addrtype --src-type", "-m mac --mac-source",
    "-p tcp -m multiport --dports", "-p icmp -m icmp --icmp-type", "-j MARK --set-xmark", "-j CONNMARK --set-mark",
    "-p tcp -j DNAT --to-destination", "-p tcp -j SNAT --to-source", "-p tcp -j REDIRECT --to-ports",
    "-j LOG --log-level", "-j REJECT --reject-with", "-j CT --zone", "-j NFQUEUE --queue-num", "-j TTL --ttl-set",
    "-j TOS --set-tos", "-j NETMAP --to", "-j NFLOG --nflog-group", "-s", "-d", "-i", "-p") for v in VALUES]
RULE_WORDS = [w for w in IPT_WORDS if w not in ("\n", "*filter", "*nat", "*raw", "*mangle", "COMMIT")]


@st.composite
def ipt_dump(draw: st.DrawFn) -> str:
    """A mostly well-formed dump whose rules are random option soup: reaches every extension parser."""
    table = draw(st.sampled_from(["filter", "nat", "raw", "mangle"]))
    chains = {"filter": ["INPUT", "FORWARD", "OUTPUT"], "nat": ["PREROUTING", "OUTPUT", "POSTROUTING"],
              "raw": ["PREROUTING", "OUTPUT"], "mangle": ["PREROUTING", "FORWARD", "POSTROUTING"]}[table]
    lines = [f"*{table}", f":{chains[0]} ACCEPT [0:0]", ":X - [0:0]"]
    for _ in range(draw(st.integers(1, 6))):
        chain = draw(st.sampled_from([*chains, "X"]))
        parts = draw(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(RULE_WORDS)), max_size=6))
        lines.append(" ".join(["-A", chain, *parts]))
    if draw(st.booleans()):
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def ipt_text() -> st.SearchStrategy[str]:
    soup = st.lists(st.sampled_from(IPT_WORDS), max_size=60).map(lambda ws: " ".join(ws).replace(" \n ", "\n"))
    return st.one_of(soup, ipt_dump(), ipt_dump())


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
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(texts)
    def check(text: str) -> None:
        try:
            parser(text, "fuzz.txt")
        except ParseError as e:
            assert e.source == "fuzz.txt"
            assert str(e)

    check()
