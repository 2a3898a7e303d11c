"""Property: on any mutation of a valid dump, the lazy read (rules built on demand) and the
plain read give the same ruleset (same rules, texts, origins) or the same refusal."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pktpath.errors import ParseError
from pktpath.model.xtables import Ruleset
from pktpath.parse import chain_validation
from pktpath.parse.iptables_save import _Parser, parse

BASE = [
    "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":A - [0:0]", ":B - [0:0]",
    "-A INPUT -i lo -j ACCEPT",
    '-A INPUT -p tcp -m comment --comment "ssh in" -m tcp --dport 22 -j A',
    "[5:300] -A INPUT -s 10.0.0.0/8,192.168.0.0/16 -j B",
    "-A A -m conntrack --ctstate NEW -j ACCEPT",
    "-A B -d 10.1.2.3/32 -p udp -m udp --dport 53 -j RETURN",
    "-A FORWARD -o eth0 -j A",
    "COMMIT",
    "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
    ":S - [0:0]",
    "-A PREROUTING -j S",
    "-A S -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.0.0.5:6443",
    "-A POSTROUTING -o eth0 -j MASQUERADE",
    "COMMIT",
]
WORDS = ["-j", "-g", "A", "B", "S", "INPUT", "DROP", "RETURN", "-p", "tcp", "!", '"', '"x y"', "-m", "mark",
         "--mark", "1", "-s", "1.2.3.4", "-o", "eth1", "-i", "--dport", "80", "[0:0]", " ", "\t", "-A", "-I",
         "-D", ":C - [0:0]", "COMMIT", "\\", "--comment", "comment", "MASQUERADE", "-d", "1.1.1.1,2.2.2.2"]


def _read(text: str, lazy: bool) -> Ruleset | str:
    try:
        return parse(text, "t", jobs=2) if lazy else _Parser(text, "t").run()
    except ParseError as e:
        return e.render()


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(BASE)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["insert-word", "replace-word", "drop-line", "dup-line", "new-line"]))
        words = lines[i].split(" ")
        if op == "insert-word":
            words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(WORDS)))
            lines[i] = " ".join(words)
        elif op == "replace-word":
            words[draw(st.integers(0, len(words) - 1))] = draw(st.sampled_from(WORDS))
            lines[i] = " ".join(words)
        elif op == "drop-line":
            del lines[i]
        elif op == "dup-line":
            lines.insert(i, lines[i])
        else:
            lines.insert(i, "-A " + " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))))
        if not lines:
            lines = ["*filter", "COMMIT"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("forked", [False, True], ids=["in-process", "forked"])
@settings(max_examples=int(os.environ.get("PKTPATH_FUZZ_EXAMPLES", "150")), deadline=None)
@given(text=mutated())
def test_lazy_read_equals_plain_read(text: str, forked: bool) -> None:
    if forked:
        chain_validation.PARALLEL_FROM = 1
    try:
        lazy, plain = _read(text, True), _read(text, False)
    finally:
        chain_validation.PARALLEL_FROM = 30_000
    if isinstance(plain, str) or isinstance(lazy, str):
        assert lazy == plain
        return
    assert lazy == plain
    details = [[(r.text, str(r.origin), r.counters) for c in t.chains.values() for r in c.rules]
               for t in lazy.tables.values()]
    assert details == [[(r.text, str(r.origin), r.counters) for c in t.chains.values() for r in c.rules]
                       for t in plain.tables.values()]
