"""x_tables rulesets: tables of chains of rules, each rule an ``ipt_ip`` header part,
extension matches and one target (net/ipv4/netfilter/ip_tables.c's ``struct ipt_entry``).

Extension matches and targets are frozen dataclasses defined in ``pktpath.ext``; this module
only fixes the shape they share.  The model never evaluates anything: ``matches()`` and
``target()`` are called by the engine.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

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


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    policy: Verdict | None  # None for a user-defined chain
    rules: tuple[Rule, ...] = ()
    origin: SourceLoc | None = field(default=None, compare=False)

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    chains: Mapping[str, Chain]
    origin: SourceLoc | None = field(default=None, compare=False)

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
