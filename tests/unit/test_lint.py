"""pktpath chains / explain: the jump graph, unreachable and empty chains, shadowed rules."""

from __future__ import annotations

import pytest

from pktpath.errors import UsageError
from pktpath.lint.chains import chain_graph, shadowed_rules
from pktpath.lint.explain import explain_rule
from pktpath.parse.iptables_save import parse

RULES = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
:orphan - [0:0]
:empty - [0:0]
-A INPUT -p tcp -j web
-A INPUT -j empty
-A web -p tcp -j ACCEPT
-A web -p tcp -m tcp --dport 80 -j DROP
-A web -s 10.0.0.0/8 -p tcp -j DROP
-A web -m mark --mark 0x1 -j DROP
-A orphan -j ACCEPT
COMMIT
"""


def test_graph_flags_unreachable_and_empty() -> None:
    graph = {c.name: c for c in chain_graph(parse(RULES, "r.txt"))}
    assert graph["orphan"].unreachable and not graph["web"].unreachable
    assert graph["empty"].empty and graph["web"].callers == ("INPUT",)
    assert graph["web"].hooks == ("INPUT",)


def test_shadowed_rules() -> None:
    found = [(s.chain, s.number, s.by) for s in shadowed_rules(parse(RULES, "r.txt"))]
    # rule 2 (tcp dport 80) and 3 (tcp from 10/8) are caught by rule 1 (all tcp); the mark rule is not judged
    assert found == [("web", 2, 1), ("web", 3, 1)]


@pytest.mark.parametrize("ref", ["filter:web:2", "filter:web:rule:2", "r.txt:11"])
def test_explain_finds_rule(ref: str) -> None:
    e = explain_rule(parse(RULES, "r.txt"), ref)
    assert e.ref == "filter:web:rule:2" and "drops the packet" in e.action
    assert "chain INPUT (rule 1)" in e.reached_from


def test_explain_bad_ref() -> None:
    with pytest.raises(UsageError, match="expected TABLE:CHAIN:N"):
        explain_rule(parse(RULES, "r.txt"), "nonsense")
