"""x_tables rulesets: tables of chains of rules, each rule an ``ipt_ip`` header part,
extension matches and one target (net/ipv4/netfilter/ip_tables.c's ``struct ipt_entry``).

Extension matches and targets are frozen dataclasses defined in ``pktpath.ext``; this module
only fixes the shape they share.  The model never evaluates anything: ``matches()`` and
``target()`` are called by the engine.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, ClassVar, overload

from pktpath.errors import SourceLoc
from pktpath.model.addr import Prefix

if TYPE_CHECKING:
    from pktpath.engine.skb import Skb, XtParams

BUILTIN_CHAINS: Mapping[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}


class Verdict(enum.Enum):
    """What a target tells ipt_do_table() (NF_* verdicts plus XT_CONTINUE / XT_RETURN)."""

    ACCEPT = "ACCEPT"
    DROP = "DROP"
    QUEUE = "QUEUE"
    STOLEN = "STOLEN"
    RETURN = "RETURN"
    CONTINUE = "CONTINUE"


@dataclass(frozen=True, slots=True)
class Uncertain:
    """A match whose outcome the snapshot cannot decide: both outcomes are followed.

    ``probability`` is the chance that it matches when that is known (a random draw),
    else None (a rate limit, a payload match...)."""

    why: str
    probability: float | None = None


MatchResult = bool | Uncertain


class Match(ABC):
    """An extension match (``-m NAME ...``).  Subclasses are frozen dataclasses."""

    name: ClassVar[str]
    #: True when loading this match makes the kernel track connections in the namespace.
    needs_conntrack: ClassVar[bool] = False

    @abstractmethod
    def matches(self, skb: Skb, par: XtParams) -> MatchResult: ...

    @abstractmethod
    def render(self) -> str:
        """The ``-m NAME --opt ...`` text iptables-save would print."""


class Target(ABC):
    """An extension target (``-j NAME ...``) that is not a plain verdict or a jump."""

    name: ClassVar[str]
    needs_conntrack: ClassVar[bool] = False
    #: Tables the kernel lets this target be used in (None: any).
    tables: ClassVar[frozenset[str] | None] = None

    @abstractmethod
    def target(self, skb: Skb, par: XtParams) -> Verdict: ...

    @abstractmethod
    def render(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StandardTarget:
    """ACCEPT, DROP, QUEUE, RETURN: a verdict the table walk handles itself."""

    verdict: Verdict

    def render(self) -> str:
        return f"-j {self.verdict.value}"


@dataclass(frozen=True, slots=True)
class JumpTarget:
    """``-j CHAIN`` (pushes the jump stack) or ``-g CHAIN`` (does not)."""

    chain: str
    goto: bool = False

    def render(self) -> str:
        return f"{'-g' if self.goto else '-j'} {self.chain}"


@dataclass(frozen=True, slots=True)
class NoTarget:
    """A rule without ``-j``: it only counts (continues)."""

    def render(self) -> str:
        return ""


AnyTarget = Target | StandardTarget | JumpTarget | NoTarget


@dataclass(frozen=True, slots=True)
class IpHeaderMatch:
    """The built-in part of a rule: ``-s -d -i -o -p -f`` and their ``!`` (struct ipt_ip)."""

    src: Prefix = Prefix(0, 0)
    dst: Prefix = Prefix(0, 0)
    iniface: str = ""  # "" is any; a trailing '+' is a prefix wildcard
    outiface: str = ""
    proto: int = 0  # 0 is any
    frag: bool = False
    inv_src: bool = False
    inv_dst: bool = False
    inv_in: bool = False
    inv_out: bool = False
    inv_proto: bool = False
    inv_frag: bool = False

    @property
    def unconditional(self) -> bool:
        """All zero, as ``unconditional()`` in ip_tables.c tests it."""
        return self == _EMPTY_IP


_EMPTY_IP = IpHeaderMatch()


@dataclass(frozen=True, slots=True)
class Rule:
    ip: IpHeaderMatch
    matches: tuple[Match, ...]
    target: AnyTarget
    text: str = field(default="", compare=False)  # the rule as the snapshot has it (no counters)
    origin: SourceLoc | None = field(default=None, compare=False)
    counters: tuple[int, int] | None = field(default=None, compare=False)

    @property
    def goto(self) -> bool:
        return isinstance(self.target, JumpTarget) and self.target.goto


ExactKey = tuple[int | None, int, int | None]  # (exact dst, proto, exact dport)
INDEX_MIN_RUN = 8  # a run of fewer keyed rules is not worth an index


def exact_key(rule: Rule) -> ExactKey | None:
    """The exact destination address and/or port (with an exact protocol) a rule requires,
    or None when it does not require enough of them to be looked up by key."""
    ip = rule.ip
    if not ip.proto or ip.inv_proto:
        return None
    dst = ip.dst.addr if ip.dst.mask == 0xFFFFFFFF and not ip.inv_dst else None
    dport = None
    for m in rule.matches:
        if m.name in ("tcp", "udp") and m.name == {6: "tcp", 17: "udp"}.get(ip.proto):
            rng = getattr(m, "dport", None)
            if rng is not None and rng[0] == rng[1] and not getattr(m, "inv_dport", False):
                dport = rng[0]
    if dst is None and dport is None:
        return None
    return dst, ip.proto, dport


def span_line(text: str, spans: Sequence[int], j: int) -> tuple[int, str]:
    """(line number, text) of line ``j`` of ``spans``: flattened (offset, line number) pairs
    of lines of ``text`` (a line ends at its newline)."""
    off = spans[2 * j]
    end = text.find("\n", off)
    return spans[2 * j + 1], text[off:end if end >= 0 else len(text)]


class LazyRules(Sequence[Rule]):
    """A chain's rules, each built from its line the first time something asks for it.

    A large dump is validated as a whole when it is loaded, but a packet only ever reaches a
    few hundred of its rules: building the other 300,000 would cost seconds and most of the
    memory.  The lines stay in the dump's text (``spans``: see span_line()); ``load(lineno,
    line)`` returns the rules of one line (an ``-s a,b`` line holds several); ``counts``
    gives how many per line when that is not always one."""

    __slots__ = ("_text", "_spans", "_load", "_built", "_starts", "_len")

    def __init__(self, text: str, spans: Sequence[int], load: Callable[[int, str], Sequence[Rule]],
                 counts: Sequence[int] | None = None, built: list[Sequence[Rule] | None] | None = None) -> None:
        self._text = text
        self._spans = spans
        self._load = load
        self._built = built  # per line, once something was built
        self._starts = list(accumulate(counts, initial=0)) if counts is not None else None
        self._len = self._starts[-1] if self._starts is not None else len(spans) // 2

    def __len__(self) -> int:
        return self._len

    def _line_rules(self, j: int) -> Sequence[Rule]:
        built = self._built
        if built is None:
            built = self._built = [None] * (len(self._spans) // 2)
        got = built[j]
        if got is None:
            got = built[j] = self._load(*span_line(self._text, self._spans, j))
        return got

    @overload
    def __getitem__(self, i: int) -> Rule: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Rule]: ...

    def __getitem__(self, i: int | slice) -> Rule | Sequence[Rule]:
        if isinstance(i, slice):
            return tuple(self)[i]
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(i)
        if self._starts is None:
            return self._line_rules(i)[0]
        j = bisect_right(self._starts, i) - 1
        return self._line_rules(j)[i - self._starts[j]]

    def __iter__(self) -> Iterator[Rule]:
        for j in range(len(self._spans) // 2):
            yield from self._line_rules(j)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __reduce__(self) -> tuple[type[tuple[Rule, ...]], tuple[tuple[Rule, ...]]]:
        return tuple, (tuple(self),)  # pickled (and unpickled) as the plain tuple of its rules

    def __repr__(self) -> str:
        done = sum(b is not None for b in self._built) if self._built is not None else 0
        return f"LazyRules({self._len} rules, {done} lines built)"


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """What the load-time checks and the engine need to know of a chain without building its
    rules again: worked out once when its lines are validated (and cached between runs)."""

    edges: tuple[str, ...]  # the chains its rules jump or go to, first use first
    hooks: int  # bitmask (1 << Hook value) of the hooks all its extensions allow; -1: any
    uses_in: bool  # some rule has -i
    uses_out: bool  # some rule has -o
    conntrack: bool  # some extension turns conntrack on
    sets: tuple[str, ...]  # ipset names its rules reference
    bad_table_target: bool  # a target not valid in this table
    counts: tuple[int, ...] | None  # rules per line, when some line holds more than one
    keys: tuple[ExactKey | None, ...] | None  # exact_key() per rule, when INDEX_MIN_RUN keyed rules run on


@dataclass(frozen=True, slots=True)
class TableFacts:
    """What a validated table's rules add up to, kept so that a table loaded again unchanged
    needs neither its rules nor its chains' facts."""

    needs_conntrack: bool
    sets: tuple[str, ...]
    # Per chain whose lines expand or which is worth an index: (ChainFacts.counts, .keys).
    layout: Mapping[str, tuple[tuple[int, ...] | None, tuple[ExactKey | None, ...] | None]]


def table_facts(facts: Mapping[str, ChainFacts]) -> TableFacts:
    sets: dict[str, None] = {}
    for f in facts.values():
        sets.update(dict.fromkeys(f.sets))
    return TableFacts(any(f.conntrack for f in facts.values()), tuple(sets),
                      {name: (f.counts, f.keys) for name, f in facts.items()
                       if f.counts is not None or f.keys is not None})


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    policy: Verdict | None  # None for a user-defined chain
    rules: Sequence[Rule] = ()
    origin: SourceLoc | None = field(default=None, compare=False)
    # exact_key() of each rule, worked out when the chain was validated; None then means no
    # run long enough to index.  Only meaningful when ``index_known``.
    index_keys: tuple[ExactKey | None, ...] | None = field(default=None, compare=False)
    index_known: bool = field(default=False, compare=False)

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    chains: Mapping[str, Chain]
    origin: SourceLoc | None = field(default=None, compare=False)
    facts: TableFacts | None = field(default=None, compare=False)  # known without reading the rules

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.chains.values())))


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The iptables ruleset of one family, tables keyed by name."""

    tables: Mapping[str, Table]
    source: str = ""
    backend: str | None = None  # "legacy" / "nf_tables" when the dump says

    def __hash__(self) -> int:
        return hash(tuple(self.tables.values()))
