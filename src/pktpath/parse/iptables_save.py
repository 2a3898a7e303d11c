"""``iptables-save`` (and ``iptables -S``) text -> ``Ruleset``.

Accepts what iptables-restore accepts: the canonical form iptables-save prints (legacy and
nf_tables backends, with or without ``-c`` counters) and the hand-written forms
(``--set-mark``, ``-p tcp --dport`` without ``-m tcp``, option abbreviations, long option
names).  Every rule keeps its text, file and line.  Sans-IO: ``parse(text, source)``.
"""

from __future__ import annotations

import gc
import hashlib
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pktpath.ext  # noqa: F401  (registers every extension)
from pktpath.engine.skb import PROTO_NAMES
from pktpath.errors import ParseError, SourceLoc, UnsupportedFeature
from pktpath.ext.registry import MATCHES, TARGETS, ExtSpec, Opt, ParseCtx
from pktpath.model.addr import Prefix
from pktpath.model.xtables import (
    BUILTIN_CHAINS,
    AnyTarget,
    Chain,
    ChainFacts,
    IpHeaderMatch,
    JumpTarget,
    LazyRules,
    Match,
    NoTarget,
    Rule,
    Ruleset,
    StandardTarget,
    Table,
    TableFacts,
    Target,
    Verdict,
    span_line,
    table_facts,
)
from pktpath.parse.ruleset_checks import check_table, facts_pass_table_checks
from pktpath.parse.tokens import Token, UnterminatedQuote, quote_word, split_words, split_words_quick

STANDARD_VERDICTS = {"ACCEPT": Verdict.ACCEPT, "DROP": Verdict.DROP, "QUEUE": Verdict.QUEUE,
                     "RETURN": Verdict.RETURN}
POLICIES = {"ACCEPT": Verdict.ACCEPT, "DROP": Verdict.DROP, "QUEUE": Verdict.QUEUE}

# Built-in options (iptables' cmd options), long and short spellings.
BUILTIN_OPTS = {
    "-s": "src", "--source": "src", "--src": "src",
    "-d": "dst", "--destination": "dst", "--dst": "dst",
    "-i": "in", "--in-interface": "in",
    "-o": "out", "--out-interface": "out",
    "-p": "proto", "--protocol": "proto",
    "-f": "frag", "--fragment": "frag",
    "-m": "match", "--match": "match",
    "-j": "jump", "--jump": "jump",
    "-g": "goto", "--goto": "goto",
    "-c": "counters", "--set-counters": "counters",
    "-4": "ipv4", "--ipv4": "ipv4", "-6": "ipv6", "--ipv6": "ipv6",
}
COMMANDS = ("-A ", "--append ", "-I ", "--insert ", "-D ", "--delete ", "-R ", "--replace ", "-P ", "--policy ",
            "-N ", "--new-chain ", "-X", "--delete-chain", "-F", "--flush", "-E ", "--rename-chain ", "-Z",
            "--zero")
IMPLICIT_PROTO_MATCH = {6: "tcp", 17: "udp", 1: "icmp", 132: "sctp", 33: "dccp", 136: "udplite"}
COUNTERS_RE = re.compile(r"^\[(\d+):(\d+)\]$")
IFNAMSIZ = 16


@dataclass
class _ChainDraft:
    name: str
    policy: Verdict | None
    origin: SourceLoc
    rules: list[Rule] = field(default_factory=list)
    # The lazy read's "-A" lines, validated as a whole and built rule by rule on demand:
    # (offset in the text, line number) pairs, flat (a 300k-rule dump's lines as strings
    # would double its memory).
    spans: array[int] = field(default_factory=lambda: array("q"))


@dataclass
class _TableDraft:
    name: str
    origin: SourceLoc
    chains: dict[str, _ChainDraft] = field(default_factory=dict)


def parse(text: str, source: str = "iptables-save.txt", lenient: bool = False,
          warnings: list[str] | None = None, facts_cache: FactsStore | None = None,
          jobs: int = 1) -> Ruleset:
    """Parse a whole dump.  Raises ParseError naming ``source:line``.

    With ``lenient`` a rule that cannot be read is kept as an uncertain rule and a warning
    naming it is appended to ``warnings``.

    A plain ``iptables-save`` dump is read lazily: every rule line is validated (on ``jobs``
    processes when the dump is large, skipping chains whose facts ``facts_cache`` already
    holds from an earlier run), but a rule object is built only when something asks for it.
    Whenever that path meets anything else (restore commands, an error), the dump is read
    again the plain way, so results and error messages are the same either way."""
    # The parse builds hundreds of thousands of objects and frees none: the cyclic GC would
    # only rescan them (about 15% of a large load).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        parser = _Parser(text, source)
        result = None
        if not lenient:
            parser.lazy = True
            parser.facts_cache = facts_cache
            parser.jobs = jobs
            try:
                result = parser.run()
            except (ParseError, _ReadEagerly):
                parser = _Parser(text, source)
        if result is None:
            parser.lenient = lenient
            result = parser.run()
    finally:
        if was_enabled:
            gc.enable()
    if warnings is not None:
        warnings.extend(parser.warnings)
    return result


class _ReadEagerly(Exception):
    """The lazy read met something only the plain read handles (or reports exactly)."""


TABLE_TARGETS = {
    "nat": ("DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"),
    "raw": ("NOTRACK", "CT", "TRACE"),
    "mangle": ("MARK", "TOS", "TTL", "DSCP", "TPROXY", "TCPMSS", "CHECKSUM", "ECN", "CONNMARK", "CLASSIFY"),
}


def infer_table(text: str) -> str:
    """The table an ``iptables -S`` dump (which has no ``*table`` line) comes from."""
    chains = set(re.findall(r"^-[PAN] (\S+)", text, re.M))
    targets = set(re.findall(r" -j (\S+)", text))
    for table in ("nat", "raw"):
        if targets & set(TABLE_TARGETS[table]):
            return table
    if chains & {"PREROUTING", "POSTROUTING"}:
        if chains & {"FORWARD"} or targets & set(TABLE_TARGETS["mangle"]):
            return "mangle"
        if chains <= {"PREROUTING", "OUTPUT"} | {c for c in chains if c not in BUILTIN_CHAINS["mangle"]}:
            return "raw"
        return "nat"
    return "filter"


def chain_digest(table: str, chain: str, builtin: bool, text: str, spans: Sequence[int]) -> bytes:
    """What a chain's facts depend on: its table, name, kind and lines."""
    h = hashlib.blake2b(f"{table} {chain} {'builtin' if builtin else 'user'}".encode(), digest_size=16)
    count = len(spans) // 2
    if count:
        first, (_, last) = spans[0], span_line(text, spans, count - 1)
        block = text[first:spans[2 * count - 2] + len(last)]
        if block.count("\n") == count - 1:  # the chain's lines follow each other: hash them at once
            h.update(b"\n" + block.encode())
        else:
            for j in range(count):
                h.update(b"\n" + span_line(text, spans, j)[1].encode())
    return h.digest()


class FactsStore(Protocol):
    """Facts of chains and tables validated before (pktpath.io.facts_cache keeps them on disk)."""

    def table(self, digest: bytes) -> TableFacts | None: ...
    def chain(self, digest: bytes) -> ChainFacts | None: ...
    def put_table(self, digest: bytes, facts: TableFacts) -> None: ...
    def put_chain(self, digest: bytes, facts: ChainFacts) -> None: ...


_NO_LAYOUT: tuple[None, None] = (None, None)
#: Dumps with fewer rule lines validate in well under 0.1 s: their facts are not stored.
CACHE_FROM = 5_000


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tables: dict[str, _TableDraft] = {}
        self.current: _TableDraft | None = None
        self.backend: str | None = None
        self.s_format = False  # iptables -S lines outside any *table
        self.lenient = False
        self.warnings: list[str] = []
        self.ext_cache: dict[tuple[object, ...], object] = {}
        self.prefix_cache: dict[str, Prefix] = {}
        self.header_cache: dict[tuple[object, ...], IpHeaderMatch] = {}
        self.jump_cache: dict[tuple[str, bool], JumpTarget] = {}
        self.lazy = False
        self.facts_cache: FactsStore | None = None
        self.jobs = 1

    def err(self, lineno: int, line: str, msg: str, col: int = 0) -> ParseError:
        return ParseError(self.source, lineno, msg, line, col)

    def run(self) -> Ruleset:
        lazy = self.lazy
        text = self.text
        size = len(text)
        pos = lineno = 0
        while pos <= size:  # the lines as text.split("\n") gives them, without the list
            end = text.find("\n", pos)
            if end < 0:
                end = size
            lineno += 1
            start, pos = pos, end + 1
            if lazy and self.current is not None:
                # Fast paths for the two lines a large dump is made of, taken only when the
                # plain path would do exactly the same.
                if text.startswith("-A ", start, end):  # keep the rule's place, without a look inside
                    gap = text.find(" ", start + 3, end)
                    draft = self.current.chains.get(text[start + 3:gap]) if gap > start + 3 else None
                    if draft is not None and not text[end - 1].isspace() and '"' not in draft.name:
                        draft.spans.append(start)
                        draft.spans.append(lineno)
                        continue
                elif text.startswith(":", start, end) and text.endswith(" - [0:0]", start, end):
                    name = text[start + 1:end - 8]
                    if (name and name not in self.current.chains and len(name) < 29 and name[0] != "-"
                            and name not in STANDARD_VERDICTS and name not in BUILTIN_CHAINS[self.current.name]
                            and name.split() == [name]):
                        self.current.chains[name] = _ChainDraft(name, None, SourceLoc(self.source, lineno,
                                                                                       text[start:end]))
                        continue
            raw = text[start:end]
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                if "iptables-save" in line and "nf_tables" in line:
                    self.backend = "nf_tables"
                elif "iptables-save" in line and self.backend is None and "legacy" in line:
                    self.backend = "legacy"
                continue
            if line.startswith("*"):
                self.start_table(lineno, line)
            elif line == "COMMIT":
                if raw != "COMMIT":
                    # iptables-restore compares the whole line with "COMMIT\n": a trailing blank or
                    # CR makes it an (invalid) command.
                    raise self.err(lineno, raw, "Bad argument `COMMIT': the COMMIT line must hold nothing else "
                                   "(no trailing blanks or CR)")
                if self.current is None:
                    raise self.err(lineno, line, "COMMIT outside a table, expected '*TABLE' before it")
                self.current = None
            elif line.startswith(":"):
                self.chain_decl(lineno, line)
            elif line.startswith(COMMANDS) or (line.startswith("[") and " -A " in line):
                if self.lazy:
                    self.defer(lineno, line, start if line == raw else -1)
                else:
                    self.command(lineno, line)
            else:
                raise self.err(lineno, line, "expected '*TABLE', ':CHAIN POLICY [p:b]', '-A CHAIN ...', "
                               "'COMMIT' or a '#' comment")
        if self.current is not None and not self.s_format:
            raise self.err(self.current.origin.line, self.current.origin.text,
                           f"table '{self.current.name}' has no COMMIT (iptables-restore refuses it)")
        return self.finish_lazy() if self.lazy else self.finish()

    # ------------------------------------------------------------ the lazy read
    def defer(self, lineno: int, line: str, offset: int) -> None:
        """Keep the place of an ``-A CHAIN ...`` line (``[p:b] -A ...`` too: ``offset`` is
        where it starts in the text, -1 when it has blanks around) for validation; anything
        else sends the dump to the plain read."""
        if self.current is None or offset < 0:
            raise _ReadEagerly
        if line.startswith("-A "):
            end = line.find(" ", 3)
            name = line[3:end] if end > 0 else line[3:]
        else:
            parts = line.split(None, 3)
            if len(parts) < 3 or parts[1] != "-A":
                raise _ReadEagerly
            name = parts[2]
        draft = self.current.chains.get(name)
        if draft is None or '"' in name:
            raise _ReadEagerly
        draft.spans.append(offset)
        draft.spans.append(lineno)

    def line_rules(self, table: str, lineno: int, line: str) -> list[Rule]:
        """The rules of one ``-A`` line, exactly as ``command()`` builds them.  (Columns only
        serve error messages, and an error sends the dump to the plain read: no need here.)"""
        quick = split_words_quick(line) if line[0] == "-" else None
        try:
            words = quick if quick is not None else split_words(line)
        except UnterminatedQuote as e:
            raise self.err(lineno, line, "unterminated quote", e.col) from None
        counters: tuple[int, int] | None = None
        m = COUNTERS_RE.match(words[0].text)
        if m:
            counters = (int(m.group(1)), int(m.group(2)))
            words = words[1:]
        rule_text = line[words[0].col - 1:] if counters is not None else line
        loc = SourceLoc(self.source, lineno, line)
        return self.rules(table, words[1].text, words[2:], loc, rule_text, counters)

    def finish_lazy(self) -> Ruleset:
        from pktpath.parse.chain_validation import ChainWork, validate

        lines = sum(len(c.spans) for d in self.tables.values() for c in d.chains.values()) // 2
        store = self.facts_cache if lines >= CACHE_FROM else None
        # 1. What the store already knows: whole tables, else single chains.
        digests: dict[tuple[str, str], bytes] = {}
        table_digest: dict[str, bytes] = {}
        known_tables: dict[str, TableFacts] = {}
        known: dict[tuple[str, str], ChainFacts] = {}
        work: list[ChainWork] = []
        for tname, draft in self.tables.items():
            if store is not None:
                for c in draft.chains.values():
                    digests[tname, c.name] = chain_digest(tname, c.name, c.policy is not None, self.text, c.spans)
                table_digest[tname] = hashlib.blake2b(b"".join(digests[tname, n] for n in draft.chains),
                                                      digest_size=16, person=b"table").digest()
                hit = store.table(table_digest[tname])
                if hit is not None:
                    known_tables[tname] = hit
                    continue
            for c in draft.chains.values():
                cached = store.chain(digests[tname, c.name]) if store is not None else None
                if cached is not None:
                    known[tname, c.name] = cached
                else:
                    work.append(ChainWork(tname, c.name, c.policy is not None, c.spans))
        # 2. Validate every other line (the plain read reports the first bad one).
        checked = validate(self, work, self.jobs)
        if checked is None:
            raise _ReadEagerly
        built: dict[tuple[str, str], list[Sequence[Rule] | None]] = {}
        for item, (facts, rules) in zip(work, checked, strict=True):
            known[item.table, item.chain] = facts
            if rules is not None:
                built[item.table, item.chain] = rules
            if store is not None:
                store.put_chain(digests[item.table, item.chain], facts)
        # 3. The load-time checks of each table read anew, on its chains' facts.
        for tname, draft in self.tables.items():
            if tname in known_tables:
                continue
            facts_of = {c.name: known[tname, c.name] for c in draft.chains.values()}
            if not facts_pass_table_checks({n: c.policy is not None for n, c in draft.chains.items()},
                                           facts_of):
                raise _ReadEagerly
            known_tables[tname] = table_facts(facts_of)
            if store is not None:
                store.put_table(table_digest[tname], known_tables[tname])
        # 4. The model: chains whose rules are built when first asked for.
        tables: dict[str, Table] = {}
        for tname, draft in self.tables.items():
            tf = known_tables[tname]
            load = self.rule_loader(tname)
            chains: dict[str, Chain] = {}
            for c in draft.chains.values():
                counts, keys = tf.layout.get(c.name, _NO_LAYOUT)
                lazy_rules = LazyRules(self.text, c.spans, load, counts, built.get((tname, c.name)))
                chains[c.name] = Chain(c.name, c.policy, lazy_rules, c.origin, keys, True)
            tables[tname] = Table(tname, chains, draft.origin, tf)
        return Ruleset(tables, self.source, self.backend)

    def rule_loader(self, table: str) -> Callable[[int, str], Sequence[Rule]]:
        def load(lineno: int, line: str) -> Sequence[Rule]:
            gc_was = gc.isenabled()
            gc.disable()
            try:
                return self.line_rules(table, lineno, line)
            finally:
                if gc_was:
                    gc.enable()
        return load

    # ------------------------------------------------------------ structure
    def start_table(self, lineno: int, line: str) -> None:
        if self.current is not None and not self.s_format:
            raise self.err(lineno, line, f"table '{self.current.name}' not committed before '{line}'")
        name = line[1:].strip()
        if name not in BUILTIN_CHAINS:
            raise self.err(lineno, line, f"unknown table '{name}', expected one of "
                           + ", ".join(BUILTIN_CHAINS))
        if name in self.tables:
            # iptables-restore replaces the table with the later block.
            del self.tables[name]
        loc = SourceLoc(self.source, lineno, line)
        self.current = self.tables[name] = _TableDraft(name, loc)
        for chain in BUILTIN_CHAINS[name]:
            self.current.chains[chain] = _ChainDraft(chain, Verdict.ACCEPT, loc)
        self._declared_builtin: set[str] = set()

    def table_for_s_format(self, lineno: int, line: str) -> _TableDraft:
        if self.current is None:
            self.s_format = True
            name = infer_table(self.text)
            self.start_table(lineno, f"*{name}")
            self.warnings.append(f"{self.source}: 'iptables -S' output names no table; read as the {name} table "
                                 "(from its chains and targets)")
        assert self.current is not None
        return self.current

    def chain_decl(self, lineno: int, line: str) -> None:
        if self.current is None:
            raise self.err(lineno, line, "chain declared outside a table, expected '*TABLE' first")
        parts = line[1:].split()
        if not parts:
            raise self.err(lineno, line, "expected ':CHAIN POLICY [packets:bytes]'")
        name = parts[0]
        policy_text = parts[1] if len(parts) > 1 else "-"
        loc = SourceLoc(self.source, lineno, line)
        if len(parts) > 2 and parts[2] != "[0:0]" and not COUNTERS_RE.match(parts[2]):
            raise self.err(lineno, line, f"bad counters {parts[2]!r}, expected [packets:bytes]")
        if name in BUILTIN_CHAINS[self.current.name]:
            if policy_text not in POLICIES:
                raise self.err(lineno, line, f"bad policy {policy_text!r} for built-in chain {name}, "
                               "expected ACCEPT or DROP")
            old = self.current.chains[name]
            self.current.chains[name] = _ChainDraft(name, POLICIES[policy_text], loc, old.rules, old.spans)
            return
        if policy_text != "-":
            raise self.err(lineno, line, f"user-defined chain {name} cannot have a policy ({policy_text}); "
                           "expected '-'")
        self.new_chain(lineno, line, name, loc)

    def new_chain(self, lineno: int, line: str, name: str, loc: SourceLoc) -> None:
        assert self.current is not None
        if name in self.current.chains:
            raise self.err(lineno, line, f"chain '{name}' already exists")
        if len(name) >= 29 or not name or name.startswith("-") or name in STANDARD_VERDICTS:
            raise self.err(lineno, line, f"invalid chain name '{name}'")
        self.current.chains[name] = _ChainDraft(name, None, loc)

    def command(self, lineno: int, line: str) -> None:
        try:
            words = split_words(line)
        except UnterminatedQuote as e:
            raise self.err(lineno, line, "unterminated quote", e.col) from None
        counters: tuple[int, int] | None = None
        if words and COUNTERS_RE.match(words[0].text):
            m = COUNTERS_RE.match(words[0].text)
            assert m
            counters = (int(m.group(1)), int(m.group(2)))
            words = words[1:]
        cmd = words[0].text
        if cmd in ("-P", "--policy", "-N", "--new-chain") or self.current is None:
            table = self.current or self.table_for_s_format(lineno, line)
        else:
            table = self.current
        loc = SourceLoc(self.source, lineno, line)
        if cmd in ("-P", "--policy"):
            if len(words) < 3 or words[1].text not in BUILTIN_CHAINS[table.name] or words[2].text not in POLICIES:
                raise self.err(lineno, line, "expected '-P BUILTIN-CHAIN ACCEPT|DROP'")
            old = table.chains[words[1].text]
            table.chains[old.name] = _ChainDraft(old.name, POLICIES[words[2].text], loc, old.rules)
            return
        if cmd in ("-N", "--new-chain"):
            if len(words) != 2:
                raise self.err(lineno, line, "expected '-N CHAIN'")
            self.new_chain(lineno, line, words[1].text, loc)
            return
        if cmd in ("-X", "--delete-chain", "-F", "--flush", "-Z", "--zero", "-E", "--rename-chain"):
            self.chain_command(table, cmd, words, lineno, line)
            return
        # -A CHAIN rule...
        if len(words) < 2:
            raise self.err(lineno, line, "expected '-A CHAIN' and a rule")
        chain_name = words[1].text
        chain = table.chains.get(chain_name)
        if chain is None:
            raise self.err(lineno, line, f"chain '{chain_name}' does not exist in table '{table.name}' "
                           "(declare it with ':NAME - [0:0]' or '-N NAME' first)", words[1].col)
        position = None  # -I/-R/-D take an optional 1-based rule number
        rest = words[2:]
        if cmd not in ("-A", "--append") and rest and rest[0].text.isdigit():
            position = int(rest[0].text)
            rest = rest[1:]
            if not 1 <= position <= len(chain.rules) + (1 if cmd in ("-I", "--insert") else 0):
                raise self.err(lineno, line, f"rule number {position} is out of range for chain {chain_name} "
                               f"({len(chain.rules)} rules)", words[2].col)
        if cmd in ("-D", "--delete") and position is not None:
            del chain.rules[position - 1]
            return
        rule_text = line[words[0].col - 1:] if counters is not None else line
        if cmd not in ("-A", "--append"):
            rule_text = " ".join(["-A", chain_name, *(w.text if not w.quoted else quote_word(w.text) for w in rest)])
        try:
            rules = self.rules(table.name, chain_name, rest, loc, rule_text, counters)
        except ParseError as e:
            if not self.lenient:
                raise
            rules = [self.unparsed_rule(rest, loc, rule_text, e)]
        if cmd in ("-A", "--append"):
            chain.rules.extend(rules)
        elif cmd in ("-I", "--insert"):
            at = (position or 1) - 1
            chain.rules[at:at] = rules
        elif cmd in ("-R", "--replace"):
            if position is None or len(rules) != 1:
                raise self.err(lineno, line, "expected '-R CHAIN NUMBER rule' with one address per option")
            chain.rules[position - 1] = rules[0]
        else:  # -D with a rule: delete the first rule that is the same
            for i, existing in enumerate(chain.rules):
                if existing == rules[0]:
                    del chain.rules[i]
                    break
            else:
                raise self.err(lineno, line, "-D: no such rule in the chain (iptables: 'Bad rule')")

    def chain_command(self, table: _TableDraft, cmd: str, words: Sequence[Token], lineno: int, line: str) -> None:
        """-F/-X/-Z/-E, as iptables-restore applies them."""
        names = [w.text for w in words[1:]]
        if cmd in ("-Z", "--zero"):
            return
        if cmd in ("-E", "--rename-chain"):
            if len(names) != 2 or names[0] not in table.chains or table.chains[names[0]].policy is not None:
                raise self.err(lineno, line, "expected '-E OLD-USER-CHAIN NEW-NAME'")
            old = table.chains.pop(names[0])
            table.chains[names[1]] = _ChainDraft(names[1], None, old.origin, old.rules)
            return
        targets = names or list(table.chains)
        for name in targets:
            if name not in table.chains:
                raise self.err(lineno, line, f"chain '{name}' does not exist in table '{table.name}'")
            if cmd in ("-F", "--flush"):
                table.chains[name].rules.clear()
            elif table.chains[name].policy is None:
                del table.chains[name]
            elif names:
                raise self.err(lineno, line, f"cannot delete built-in chain {name}")

    def unparsed_rule(self, words: Sequence[Token], loc: SourceLoc, text: str, err: ParseError) -> Rule:
        """--lenient: keep the rule, its outcome unknown; keep its jump when that is readable."""
        from pktpath.ext.unparsed import UnparsedRule

        self.warnings.append(f"{loc}: rule not understood, treated as uncertain: {err.msg}")
        target: AnyTarget = NoTarget()
        for i, w in enumerate(words[:-1]):
            if w.text in ("-j", "--jump", "-g", "--goto"):
                name = words[i + 1].text
                goto = w.text in ("-g", "--goto")
                if name in STANDARD_VERDICTS and not goto:
                    target = StandardTarget(STANDARD_VERDICTS[name])
                elif name not in TARGETS:
                    target = JumpTarget(name, goto)
        return Rule(IpHeaderMatch(), (UnparsedRule(err.msg),), target, text, loc)

    # ------------------------------------------------------------ one rule
    def rules(self, table: str, chain: str, words: Sequence[Token], loc: SourceLoc, text: str,
              counters: tuple[int, int] | None) -> list[Rule]:
        ctx = ParseCtx(self.source, loc.line, loc.text, table, chain)
        srcs: list[str] = []
        dsts: list[str] = []
        ip: dict[str, object] = {}
        modules: list[tuple[ExtSpec, list[Opt], int, bool]] = []  # spec, opts, col, is_target
        target: tuple[str, int] | None = None
        goto = False
        invert = False
        i = 0
        n = len(words)

        def arg(k: int) -> Token:
            if k >= n:
                raise ctx.error(f"option {words[i].text} needs an argument", words[i].col)
            return words[k]

        while i < n:
            tok = words[i]
            w = tok.text
            if w == "!":
                if invert:
                    raise ctx.error("multiple '!' flags are not allowed", tok.col)
                invert = True
                i += 1
                continue
            kind = BUILTIN_OPTS.get(w)
            if kind is not None and kind not in ("match", "jump", "goto", "ipv4", "ipv6", "counters", "frag"):
                value = arg(i + 1)
                if value.text == "!":
                    raise ctx.error(f"'{w} ! ...' (negation after the option) is not accepted by "
                                    f"iptables 1.8; write '! {w} ...'", value.col)
                key = kind
                if key in ip or (key == "src" and srcs) or (key == "dst" and dsts):
                    raise ctx.error(f"multiple {w} flags not allowed", tok.col)
                if key == "src":
                    srcs = value.text.split(",")
                    ip["inv_src"] = invert
                elif key == "dst":
                    dsts = value.text.split(",")
                    ip["inv_dst"] = invert
                elif key in ("in", "out"):
                    name = value.text
                    if len(name) >= IFNAMSIZ:
                        raise ctx.error(f"interface name '{name}' must be shorter than {IFNAMSIZ} "
                                        "characters", value.col)
                    ip[key] = name
                    ip["inv_" + key] = invert
                elif key == "proto":
                    ctx.proto = self.proto_number(value, ctx)
                    ctx.inv_proto = invert
                    ip["proto"] = ctx.proto
                    ip["inv_proto"] = invert
                invert = False
                i += 2
                continue
            if kind == "frag":
                ip["frag"] = True
                ip["inv_frag"] = invert
                invert = False
                i += 1
                continue
            if kind in ("ipv4",):
                i += 1
                continue
            if kind == "ipv6":
                raise ctx.unsupported("an IPv6-only rule (-6) in an IPv4 dump", tok.col)
            if kind == "counters":
                a, b = arg(i + 1), arg(i + 2)
                if not (a.text.isdigit() and b.text.isdigit()):
                    raise ctx.error("expected '-c PACKETS BYTES'", tok.col)
                counters = (int(a.text), int(b.text))
                i += 3
                continue
            if kind == "match":
                if invert:
                    raise ctx.error("'!' before -m is not allowed", tok.col)
                name_tok = arg(i + 1)
                spec = MATCHES.get(name_tok.text)
                if spec is None:
                    raise ctx.unsupported(f"unknown match '-m {name_tok.text}': not an extension pktpath models "
                                          "(--lenient loads the rule as uncertain)", name_tok.col)
                modules.append((spec, [], name_tok.col, False))
                i += 2
                continue
            if kind in ("jump", "goto"):
                if target is not None:
                    raise ctx.error("more than one -j/-g target", tok.col)
                if invert:
                    raise ctx.error(f"'!' before {w} is not allowed", tok.col)
                name_tok = arg(i + 1)
                target = (name_tok.text, name_tok.col)
                goto = kind == "goto"
                if not goto and name_tok.text in TARGETS:
                    modules.append((TARGETS[name_tok.text], [], name_tok.col, True))
                i += 2
                continue
            if w.startswith("--") or (w.startswith("-") and len(w) == 2 and w not in BUILTIN_OPTS):
                consumed = self.module_option(words, i, invert, modules, ctx)
                invert = False
                i += consumed
                continue
            raise ctx.error(f"unexpected word {w!r}, expected an option", tok.col)
        if invert:
            raise ctx.error("'!' at the end of the rule, expected an option after it", words[-1].col)

        matches: list[Match] = []
        ext_target: Target | None = None
        for spec, opts, col, is_target in modules:
            # Extension objects are frozen: the same options in the same context parse once
            # (large rulesets repeat "-m tcp --dport 80" or "-j KUBE-MARK-MASQ" thousands of times).
            cache_key = (spec.name, tuple((o.name, o.args, o.invert) for o in opts), ctx.proto, ctx.inv_proto,
                   table, chain if chain in BUILTIN_CHAINS[table] else "")
            obj = self.ext_cache.get(cache_key)
            if obj is None:
                try:
                    obj = spec.parse(opts, ctx)
                except (ParseError, UnsupportedFeature):
                    raise
                except ValueError as e:
                    raise ctx.error(f"{spec.name}: {e}", col) from None
                if not ctx.warnings:
                    self.ext_cache[cache_key] = obj
            if is_target:
                assert isinstance(obj, Target)
                ext_target = obj
            else:
                assert isinstance(obj, Match)
                matches.append(obj)

        tgt: AnyTarget
        if target is None:
            tgt = NoTarget()
        elif ext_target is not None:
            tgt = ext_target
        elif target[0] in STANDARD_VERDICTS and not goto:
            tgt = StandardTarget(STANDARD_VERDICTS[target[0]])
        else:
            # A user chain (checked once the whole table is read).
            tgt = self.jump_cache.get((target[0], goto)) or self.jump_cache.setdefault(
                (target[0], goto), JumpTarget(target[0], goto))

        base = dict(ip)
        base.pop("src", None)
        base.pop("dst", None)
        for key in ("in", "out"):
            if key in base:
                base[key + "iface"] = base.pop(key)
        rules = []
        for s in srcs or [""]:
            for d in dsts or [""]:
                fields = dict(base)
                if s:
                    fields["src"] = self.prefix_cache.get(s) or self.cached_prefix(s, ctx)
                if d:
                    fields["dst"] = self.prefix_cache.get(d) or self.cached_prefix(d, ctx)
                hkey = tuple(sorted(fields.items()))
                header = self.header_cache.get(hkey)  # shared: frozen, and most rules repeat a few
                if header is None:
                    header = self.header_cache[hkey] = IpHeaderMatch(**fields)  # type: ignore[arg-type]
                rules.append(Rule(header, tuple(matches), tgt, text, loc, counters))
        return rules

    def module_option(self, words: Sequence[Token], i: int, invert: bool,
                      modules: list[tuple[ExtSpec, list[Opt], int, bool]], ctx: ParseCtx) -> int:
        tok = words[i]
        name = tok.text
        owner = self.find_owner(name, modules)
        if owner is None and ctx.proto in IMPLICIT_PROTO_MATCH and not any(
                m[0].name == IMPLICIT_PROTO_MATCH[ctx.proto] for m in modules):
            spec = MATCHES.get(IMPLICIT_PROTO_MATCH[ctx.proto])
            if spec is not None and spec.resolve(name):
                modules.insert(0, (spec, [], tok.col, False))
                owner = (modules[0], spec.resolve(name) or name)
        if owner is None:
            loaded = ", ".join(("-j " if m[3] else "-m ") + m[0].name for m in modules) or "none"
            raise ctx.error(f"unknown option {name!r} (extensions loaded: {loaded})", tok.col)
        (spec, opts, _col, _t), full = owner
        nargs = spec.options[full]
        args: list[str] = []
        k = i + 1
        if k < len(words) and words[k].text == "!" and nargs > 0 and not words[k].quoted:
            # iptables 1.8 no longer accepts "--opt ! value" (it takes "!" as the value).
            raise ctx.error(f"'{name} ! ...' (negation after the option) is not accepted by iptables 1.8; "
                            f"write '! {name} ...'", words[k].col)
        if nargs < 0:  # optional single argument
            if k < len(words) and not words[k].text.startswith("-"):
                args.append(words[k].text)
                k += 1
        else:
            for _ in range(nargs):
                if k >= len(words):
                    raise ctx.error(f"option {name} needs {nargs} argument(s)", tok.col)
                args.append(words[k].text)
                k += 1
        opts.append(Opt(full, tuple(args), invert, tok.col))
        return k - i

    @staticmethod
    def find_owner(name: str, modules: list[tuple[ExtSpec, list[Opt], int, bool]]
                   ) -> tuple[tuple[ExtSpec, list[Opt], int, bool], str] | None:
        # Newest extension first: xtables_merge_options() puts new options in front.
        for mod in reversed(modules):
            if name in mod[0].options:
                return mod, name
        hits = [(mod, full) for mod in reversed(modules) for full in mod[0].options if full.startswith(name)]
        if len({full for _, full in hits}) == 1:
            return hits[0]
        return None

    @staticmethod
    def proto_number(tok: Token, ctx: ParseCtx) -> int:
        text = tok.text.lower()
        if text in PROTO_NAMES:
            return PROTO_NAMES[text]
        if text.isdigit() and int(text) <= 255:
            return int(text)
        raise ctx.error(f"unknown protocol {tok.text!r}, expected a name (tcp, udp, icmp...) or 0-255", tok.col)

    def cached_prefix(self, text: str, ctx: ParseCtx) -> Prefix:
        p = self.prefix_cache[text] = self.prefix(text, ctx)
        return p

    @staticmethod
    def prefix(text: str, ctx: ParseCtx) -> Prefix:
        if ":" in text:
            raise ctx.unsupported(f"{text!r} is an IPv6 address: this looks like an ip6tables dump, and IPv6 "
                                  "is not modelled yet (give the IPv4 iptables-save output)")
        try:
            return Prefix.parse(text)
        except ValueError:
            raise ctx.error(f"host/network {text!r} not found: expected ADDRESS[/MASK] "
                            "(pktpath does not resolve host names)") from None

    # ------------------------------------------------------------ checks
    def finish(self) -> Ruleset:
        tables: dict[str, Table] = {}
        for name, draft in self.tables.items():
            chains = {c.name: Chain(c.name, c.policy, tuple(c.rules), c.origin) for c in draft.chains.values()}
            for chain in chains.values():
                for rule in chain.rules:
                    tgt = rule.target
                    if isinstance(tgt, JumpTarget):
                        if tgt.chain not in chains or chains[tgt.chain].builtin:
                            raise ParseError(self.source, rule.origin.line if rule.origin else 0,
                                             f"target '{tgt.chain}' is neither a standard target, a "
                                             f"known extension, nor a user chain of table '{name}'",
                                             rule.text)
                    elif isinstance(tgt, Target) and tgt.tables is not None and name not in tgt.tables:
                        raise ParseError(self.source, rule.origin.line if rule.origin else 0,
                                         f"target {tgt.name} is only valid in the "
                                         + "/".join(sorted(tgt.tables)) + f" table, not in '{name}'",
                                         rule.text)
            tables[name] = Table(name, chains, draft.origin)
            check_table(tables[name], self.source)
        return Ruleset(tables, self.source, self.backend)
