"""The lazy read of an iptables-save dump (rules built on demand, validated up front, on two
processes when large, facts cached between runs) gives exactly what the plain read gives:
the same rules with the same text and origin, the same refusals with the same message."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pktpath.engine.xt_eval import compile_table
from pktpath.errors import ParseError
from pktpath.io.facts_cache import FactsCache
from pktpath.model.xtables import ChainFacts, LazyRules, Rule, Ruleset, TableFacts
from pktpath.parse import chain_validation, iptables_save
from pktpath.parse.iptables_save import _Parser, parse

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_FILES = sorted(p for p in (CORPUS / "iptables").glob("*/*") if p.is_file()) if CORPUS.exists() else []
EXAMPLES = sorted(ROOT.glob("examples/*/iptables-save.txt"))


def plain(text: str) -> Ruleset | ParseError:
    try:
        return _Parser(text, "t").run()
    except ParseError as e:
        return e


def lazy(text: str, **kw: object) -> Ruleset | ParseError:
    try:
        return parse(text, "t", **kw)  # type: ignore[arg-type]
    except ParseError as e:
        return e


def rule_details(rs: Ruleset) -> list[tuple[str, str, str, str, tuple[int, int] | None]]:
    return [(t, c, r.text, str(r.origin), r.counters) for t, table in rs.tables.items()
            for c, chain in table.chains.items() for r in chain.rules]


def assert_same(text: str, **kw: object) -> Ruleset | ParseError:
    want, got = plain(text), lazy(text, **kw)
    if isinstance(want, ParseError):
        assert isinstance(got, ParseError), "the lazy read accepted what the plain read refuses"
        assert got.render() == want.render()
        return got
    assert isinstance(got, Ruleset), got
    assert got == want
    assert rule_details(got) == rule_details(want)
    for name, table in got.tables.items():
        if table.facts is not None:  # what the facts claim is what the rules say
            rules = [r for c in want.tables[name].chains.values() for r in c.rules]
            uses = [e for r in rules for e in (*r.matches, r.target)]
            assert table.facts.needs_conntrack == any(getattr(e, "needs_conntrack", False) for e in uses)
            sets = {s for e in uses for s in getattr(e, "referenced_sets", lambda: ())()}
            assert set(table.facts.sets) == sets
    return got


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is absent")
@pytest.mark.parametrize("path", CORPUS_FILES + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_reads_the_same(path: Path) -> None:
    assert_same(path.read_text(errors="replace"))


HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n"
NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"

CASES = [
    ("plain", HEAD + "-A INPUT -j A\n-A A -p tcp --dport 22 -j ACCEPT\n-A A -j B\nCOMMIT\n"),
    ("multi-address lines", HEAD + "-A INPUT -s 10.0.0.1,10.0.0.2 -d 1.1.1.1,2.2.2.2 -j A\n-A A -j DROP\nCOMMIT\n"),
    ("counters", HEAD + "[3:180] -A INPUT -j A\n[0:0] -A A -j DROP\nCOMMIT\n"),
    ("bad option late", HEAD + "-A INPUT -j A\n-A A -m tcp --bogus 1 -j DROP\nCOMMIT\n"),
    ("bad rule before bad decl", HEAD + "-A A -p tcp --dport x -j DROP\n:C NOPE [0:0]\nCOMMIT\n"),
    ("unknown chain", HEAD + "-A INPUT -j NOWHERE\nCOMMIT\n"),
    ("jump to builtin", HEAD + "-A A -j INPUT\nCOMMIT\n"),
    ("loop", HEAD + "-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n"),
    ("unreached loop", HEAD + "-A A -j B\n-A B -j A\nCOMMIT\n"),
    ("-o in INPUT", HEAD + "-A INPUT -o eth0 -j DROP\nCOMMIT\n"),
    ("-i via user chain in OUTPUT", HEAD + "-A OUTPUT -j A\n-A A -i eth0 -j DROP\nCOMMIT\n"),
    ("DNAT in filter", HEAD + "-A A -p tcp -j DNAT --to-destination 1.2.3.4\nCOMMIT\n"),
    ("MASQUERADE from PREROUTING", NAT + ":X - [0:0]\n-A PREROUTING -j X\n-A X -j MASQUERADE\nCOMMIT\n"),
    ("unterminated quote", HEAD + '-A A -m comment --comment "open -j DROP\nCOMMIT\n'),
    ("quoted comment", HEAD + '-A A -m comment --comment "x -j B" -j DROP\nCOMMIT\n'),
    ("restore commands", HEAD + "-A A -j DROP\n-I A 1 -j ACCEPT\n-D A 2\nCOMMIT\n"),
    ("rule before decl", "*filter\n:INPUT ACCEPT [0:0]\n-A A -j DROP\n:A - [0:0]\nCOMMIT\n"),
    ("trailing blank", HEAD + "-A A -j DROP \nCOMMIT\n"),
    ("conntrack and sets", HEAD + "-A A -m conntrack --ctstate NEW -m set --match-set s src -j DROP\nCOMMIT\n"),
    ("no COMMIT", HEAD + "-A A -j DROP\n"),
    ("policy declared late", "*filter\n:A - [0:0]\n-A INPUT -j A\n:INPUT DROP [0:0]\nCOMMIT\n"),
    ("table twice", HEAD + "-A A -j DROP\nCOMMIT\n" + HEAD + "-A B -j ACCEPT\nCOMMIT\n"),
]


@pytest.mark.parametrize(("name", "text"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("forked", [False, True], ids=["in-process", "forked"])
def test_small_cases_read_the_same(name: str, text: str, forked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if forked:
        monkeypatch.setattr(chain_validation, "PARALLEL_FROM", 1)
    assert_same(text, jobs=2 if forked else 1)


def test_a_plain_dump_is_read_lazily() -> None:
    rs = parse(HEAD + "-A INPUT -j A\n" + "".join(f"-A A -d 10.0.0.{i} -p tcp -m tcp --dport 80 -j B\n"
                                                 for i in range(20)) + "COMMIT\n", "t")
    chain = rs.tables["filter"].chains["A"]
    assert isinstance(chain.rules, LazyRules) and chain.index_known and chain.index_keys is not None
    assert repr(chain.rules) == "LazyRules(20 rules, 20 lines built)"  # built while validating here


def test_forked_validation_builds_nothing_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_validation, "PARALLEL_FROM", 1)
    rs = parse(HEAD + "-A INPUT -s 1.1.1.1,2.2.2.2 -j A\n-A A -j DROP\nCOMMIT\n", "t", jobs=2)
    rules = rs.tables["filter"].chains["INPUT"].rules
    assert repr(rules) == "LazyRules(2 rules, 0 lines built)"
    assert [str(r.ip.src) for r in rules] == ["1.1.1.1/32", "2.2.2.2/32"]
    assert rules[-1].text == rules[0].text and rules[1:] == (rules[1],)


def test_index_from_facts_equals_index_from_rules() -> None:
    text = (NAT + ":S - [0:0]\n:T - [0:0]\n-A PREROUTING -j S\n"
            + "".join(f"-A S -d 10.96.0.{i % 50} -p {'tcp' if i % 3 else 'udp'} -m {'tcp' if i % 3 else 'udp'} "
                      f"--dport {80 + i % 7} -j T\n" + ("-A S -m mark --mark 1 -j T\n" if i == 30 else "")
                      for i in range(100)) + "COMMIT\n")
    fast, slow = lazy(text, jobs=1), plain(text)
    assert isinstance(fast, Ruleset) and isinstance(slow, Ruleset)
    a, b = compile_table(fast.tables["nat"]), compile_table(slow.tables["nat"])
    a.chain_start["S"], b.chain_start["S"]  # noqa: B018  (compile the chain)

    def runs(img: object) -> list[tuple[int, int, dict[object, list[int]]]]:
        seen = {id(r): r for r in img.run_at if r is not None}.values()  # type: ignore[attr-defined]
        return sorted((r.start, r.end, r.buckets) for r in seen)

    assert runs(a) == runs(b) and len(runs(a)) == 2


class _Store:
    """An in-memory FactsStore that records what was asked."""

    def __init__(self) -> None:
        self.tables: dict[bytes, TableFacts] = {}
        self.chains: dict[bytes, ChainFacts] = {}

    def table(self, digest: bytes) -> TableFacts | None:
        return self.tables.get(digest)

    def chain(self, digest: bytes) -> ChainFacts | None:
        return self.chains.get(digest)

    def put_table(self, digest: bytes, facts: TableFacts) -> None:
        self.tables[digest] = facts

    def put_chain(self, digest: bytes, facts: ChainFacts) -> None:
        self.chains[digest] = facts


def _validated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    real = chain_validation.validate

    def spy(parser: _Parser, work: Sequence[chain_validation.ChainWork], jobs: int) -> object:
        names.extend(f"{w.table}:{w.chain}" for w in work)
        return real(parser, list(work), jobs)

    monkeypatch.setattr(chain_validation, "validate", spy)
    return names


def test_cached_facts_skip_validation_of_unchanged_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iptables_save, "CACHE_FROM", 0)
    store = _Store()
    text = HEAD + "-A INPUT -j A\n-A A -j DROP\n-A B -j ACCEPT\nCOMMIT\n"
    first = parse(text, "t", facts_cache=store)
    validated = _validated(monkeypatch)
    again = parse(text, "t", facts_cache=store)
    assert validated == [] and again == first  # the whole table was known
    edited = parse(text.replace("-A B -j ACCEPT", "-A B -j RETURN"), "t", facts_cache=store)
    assert validated == ["filter:B"]  # only the edited chain
    assert edited.tables["filter"].chains["B"].rules[0].text == "-A B -j RETURN"
    # A chain edited into a loop: its facts are new, the table check runs again and refuses it.
    broken = lazy(text.replace("-A B -j ACCEPT", "-A B -j A\n-A A -j B"), facts_cache=store)
    assert isinstance(broken, ParseError) and "jump loop" in broken.msg


def test_small_dumps_are_not_cached() -> None:
    store = _Store()
    parse(HEAD + "-A INPUT -j A\nCOMMIT\n", "t", facts_cache=store)
    assert store.tables == {} and store.chains == {}


def test_disk_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iptables_save, "CACHE_FROM", 0)
    monkeypatch.setenv("PKTPATH_CACHE_DIR", str(tmp_path))
    text = HEAD + "-A INPUT -j A\n" + "".join(f"-A A -d 10.0.0.{i} -p udp -m udp --dport 53 -j B\n"
                                                 for i in range(12)) + "-A B -m set --match-set s dst\nCOMMIT\n"
    cache = FactsCache.for_source("/snap/iptables-save.txt")
    first = parse(text, "t", facts_cache=cache)
    cache.save()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".chains", ".tables"]
    validated = _validated(monkeypatch)
    cache = FactsCache.for_source("/snap/iptables-save.txt")
    again = parse(text, "t", facts_cache=cache)
    assert validated == [] and again == first
    assert again.tables["filter"].facts == first.tables["filter"].facts
    assert again.tables["filter"].chains["A"].index_keys == first.tables["filter"].chains["A"].index_keys
    monkeypatch.setenv("PKTPATH_CACHE", "off")
    assert FactsCache.for_source("/snap/iptables-save.txt").base is None


def test_a_broken_cache_file_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKTPATH_CACHE_DIR", str(tmp_path))
    cache = FactsCache.for_source("/x")
    assert cache.base is not None
    tmp_path.mkdir(exist_ok=True)
    cache.base.with_suffix(".tables").write_bytes(b"\x00garbage")
    assert FactsCache.for_source("/x").tables == {}


def test_lazy_rules_sequence() -> None:
    built: list[int] = []

    def load(lineno: int, line: str) -> list[Rule]:
        built.append(lineno)
        rs = plain(HEAD + line + "\nCOMMIT\n")
        assert isinstance(rs, Ruleset)
        return list(rs.tables["filter"].chains["A"].rules)

    text = "-A A -s 1.1.1.1,2.2.2.2 -j DROP\n-A A -j ACCEPT"
    seq = LazyRules(text, [0, 7, text.index("\n") + 1, 8], load, (2, 1))
    assert len(seq) == 3 and built == []
    assert seq[2].text == "-A A -j ACCEPT" and built == [8]
    assert str(seq[1].ip.src) == "2.2.2.2/32" and seq[-3] == seq[0] and built == [8, 7]
    with pytest.raises(IndexError):
        seq[3]  # noqa: B018
    assert list(seq) == [seq[0], seq[1], seq[2]] and built == [8, 7]


def test_cache_keeps_the_most_recently_used_dumps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pktpath.io import facts_cache

    monkeypatch.setattr(iptables_save, "CACHE_FROM", 0)
    monkeypatch.setattr(facts_cache, "KEEP", 3)
    monkeypatch.setenv("PKTPATH_CACHE_DIR", str(tmp_path))
    for i in range(5):
        cache = FactsCache.for_source(f"/snap-{i}/iptables-save.txt")
        parse(HEAD + f"-A A -j DROP\n-A B -p tcp --dport {i + 1} -j ACCEPT\nCOMMIT\n", "t", facts_cache=cache)
        cache.save()
    assert len(list(tmp_path.glob("facts-*.tables"))) == 3
    assert len(list(tmp_path.glob("facts-*.chains"))) == 3


def test_a_lazily_read_snapshot_pickles() -> None:
    import pickle

    from pktpath.io.snapshot import load_snapshot

    snap = load_snapshot(ROOT / "examples" / "k8s-calico-node")
    assert any(isinstance(c.rules, LazyRules) for t in snap.ruleset.tables.values() for c in t.chains.values())
    again = pickle.loads(pickle.dumps(snap))
    assert again.ruleset == snap.ruleset
    assert rule_details(again.ruleset) == rule_details(snap.ruleset)
