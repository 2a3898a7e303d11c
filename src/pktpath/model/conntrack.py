"""A connection as ``conntrack -L`` lists it (frozen; the engine makes live entries of it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pktpath.errors import SourceLoc


@dataclass(frozen=True, slots=True)
class CtTuple:
    src: int
    dst: int
    sport: int = 0  # for ICMP: the identifier
    dport: int = 0  # for ICMP: type << 8 | code


@dataclass(frozen=True, slots=True)
class CtEntry:
    proto: int
    orig: CtTuple
    reply: CtTuple
    state: str | None = None  # the TCP state
    flags: frozenset[str] = frozenset()  # UNREPLIED, ASSURED
    mark: int = 0
    zone: int = 0
    origin: SourceLoc | None = field(default=None, compare=False)
