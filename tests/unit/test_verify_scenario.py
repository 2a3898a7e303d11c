"""The random scenario generator: deterministic, legal, covering the feature list, readable by pktpath."""

from __future__ import annotations

import collections
import re

import pytest

from pktpath.parse import iptables_save
from pktpath.verify.args import parse_words
from pktpath.verify.scenario import BUILTINS, IFPREFIX, Scenario, generate

N = 150


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return [generate(11, i) for i in range(N)]


def rules_of(scen: Scenario) -> list[tuple[str, str]]:
    """(table, rule line) for every -A line."""
    out: list[tuple[str, str]] = []
    table = ""
    for line in scen.iptables.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            out.append((table, line))
    return out


def test_deterministic_per_seed() -> None:
    assert generate(3, 7).to_json() == generate(3, 7).to_json()
    assert generate(3, 7).to_json() != generate(4, 7).to_json()
    assert generate(3, 7).to_json() != generate(3, 8).to_json()


def test_json_round_trip() -> None:
    s = generate(5, 1)
    assert Scenario.from_json(s.to_json()) == s


def test_pktpath_reads_every_ruleset(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        iptables_save.parse(s.iptables, f"scenario-{s.index}")


def test_packets_are_trace_arguments(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        a = parse_words(s.packet)
        assert a.dst
        assert a.local != (a.iif is not None)
        if a.iif:
            assert a.iif.startswith(IFPREFIX) and a.src and a.mac_src
        if a.local and a.src:  # a process sends from one of its own addresses
            own = {x.split("/")[0] for i in s.ifaces for x in i.addrs} | {x.split("/")[0] for x in s.lo_addrs}
            assert a.src in own


LEGAL_HOOKS = {"REJECT": {"INPUT", "FORWARD", "OUTPUT"}, "DNAT": {"PREROUTING", "OUTPUT"},
               "REDIRECT": {"PREROUTING", "OUTPUT"}, "SNAT": {"POSTROUTING", "INPUT"}, "MASQUERADE": {"POSTROUTING"}}
TABLE_ONLY = {"REJECT": "filter", "DNAT": "nat", "SNAT": "nat", "MASQUERADE": "nat", "REDIRECT": "nat",
              "CT": "raw", "NOTRACK": "raw"}


def test_targets_are_legal_in_builtin_chains(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        for table, rule in rules_of(s):
            chain = rule.split()[1]
            target = re.search(r"-j (\S+)", rule)
            if target is None:
                continue
            t = target.group(1)
            if t in TABLE_ONLY:
                assert table == TABLE_ONLY[t], rule
            if chain in BUILTINS[table] and t in LEGAL_HOOKS:
                assert chain in LEGAL_HOOKS[t], rule
            assert not (table == "nat" and t == "DROP"), rule
            if "tcp-reset" in rule or "--to-ports" in rule or re.search(r"--to-\w+ [\d.]+:\d+", rule):
                assert re.search(r"(^| )-p (tcp|udp)", rule), rule


def test_interfaces_only_where_iptables_allows_them(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        for _, rule in rules_of(s):
            chain = rule.split()[1]
            if chain in ("OUTPUT", "POSTROUTING"):
                assert not re.search(r"(^| )-i ", rule), rule
            if chain in ("PREROUTING", "INPUT"):
                assert not re.search(r"(^| )-o ", rule), rule
            for opt in ("-s", "-d", "-i", "-o", "--sport", "--dport"):
                assert len(re.findall(rf"(^| ){opt} ", rule)) <= 1, rule


def test_jumps_go_forward_only(scenarios: list[Scenario]) -> None:
    """No loops: a chain only jumps to chains declared after it."""
    for s in scenarios:
        order: dict[str, int] = {}
        for line in s.iptables.splitlines():
            if line.startswith("*"):
                order = {}
            elif line.startswith(":"):
                order[line[1:].split()[0]] = len(order)
            elif line.startswith("-A "):
                m = re.search(r"-[jg] (\S+)", line)
                if m and m.group(1) in order and order[m.group(1)] >= len(BUILTINS[_table(s, line)]):
                    assert order[m.group(1)] > order[line.split()[1]], line


def _table(s: Scenario, rule: str) -> str:
    table = ""
    for line in s.iptables.splitlines():
        if line.startswith("*"):
            table = line[1:]
        if line == rule:
            return table
    return table


FEATURES = {
    "match": ["-m tcp|-p tcp", "-p udp", "-m icmp", "-m multiport", "-m comment", "-m addrtype", "--limit-iface-in",
              "--limit-iface-out", "-m mark", "-m conntrack", "-m state", "-m iprange", "-m length", "-m ttl",
              "-m mac", "-m set"],
    "target": ["-j ACCEPT", "-j DROP", "-j RETURN", "-j REJECT", "-j LOG", "-j MARK", "-j CONNMARK", "-j DNAT",
               "-j SNAT", "-j MASQUERADE", "-j REDIRECT", "-j CT --notrack", "-j NOTRACK", "-g "],
}


def test_feature_coverage(scenarios: list[Scenario]) -> None:
    text = "\n".join(s.iptables for s in scenarios)
    for features in FEATURES.values():
        for f in features:
            assert any(alt in text for alt in f.split("|")), f
    routes = " ".join(r for s in scenarios for r in s.routes)
    for kind in ("unreachable", "blackhole", "prohibit", "throw", "table", " src ", "default via"):
        assert kind in routes, kind
    rules = " ".join(r for s in scenarios for r in s.rules)
    for kind in ("from ", "to ", "fwmark ", "iif ", "lookup ", "blackhole", "unreachable", "prohibit"):
        assert kind in rules, kind
    sets = "".join(s.ipset for s in scenarios)
    for kind in ("hash:ip ", "hash:net", "hash:ip,port", "bitmap:port"):
        assert kind in sets, kind
    packets: collections.Counter[str] = collections.Counter()
    for s in scenarios:
        a = parse_words(s.packet)
        packets["local" if a.local else "wire"] += 1
        packets[a.proto or "tcp"] += 1
        packets["uid" if a.uid not in (None, "0") else "uid0"] += 1
        packets["mark" if a.mark not in (None, "0") else "mark0"] += 1
        packets["secondary"] += any(len(i.addrs) > 1 for i in s.ifaces)
        packets["lo-addr"] += bool(s.lo_addrs)
        packets["forwarding-off"] += any(v == "0" for v in s.sysctl.values())
    for key in ("local", "wire", "tcp", "udp", "icmp", "uid", "mark", "secondary", "lo-addr", "forwarding-off"):
        assert packets[key] > 0, key


def test_rules_are_biased_towards_the_packet(scenarios: list[Scenario]) -> None:
    """Most -s/-d values come from the packet or the host, so rules do match."""
    hits = total = 0
    for s in scenarios:
        a = parse_words(s.packet)
        for _, rule in rules_of(s):
            for m in re.finditer(r"-[sd] ([\d.]+)/32", rule):
                total += 1
                hits += m.group(1) in (a.src, a.dst) or any(m.group(1) in x for i in s.ifaces for x in i.addrs)
    assert total and hits / total > 0.6
