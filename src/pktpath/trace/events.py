"""Structured trace events: what the engine tells its renderers (text, JSON).

Each event has a ``kind`` and a one-line ``message`` for people; ``data`` carries the
machine-readable details.  The engine never prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # hook, table, rule, decision, conntrack, nat, route, verdict, note, result
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.data}


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One TRACE line: the rule id and the packet as it was when the line was logged."""

    id: str
    iif: str | None
    oif: str | None
    src: str
    dst: str
    proto: str
    sport: int | None
    dport: int | None
    mark: int
    rule: str | None
    origin: str | None
    ttl: int
    len: int
    log: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "iif": self.iif, "oif": self.oif, "src": self.src, "dst": self.dst,
                "proto": self.proto, "sport": self.sport, "dport": self.dport, "mark": self.mark,
                "rule": self.rule, "origin": self.origin, "ttl": self.ttl, "len": self.len, "log": self.log}


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    matched: bool
    why: str
    probability: float | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "matched": self.matched, "why": self.why}


@dataclass(frozen=True, slots=True)
class Result:
    disposition: str
    oif: str | None
    packet: dict[str, Any]
    reason: str
    uncertain: tuple[str, ...] = ()  # fields of ``packet`` the kernel chooses at random

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"disposition": self.disposition, "oif": self.oif, "packet": self.packet,
                               "reason": self.reason}
        if self.uncertain:
            out["uncertain"] = list(self.uncertain)
        return out


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """One possible fate of the packet: the choices that led to it and what happened."""

    probability: float | None
    choices: tuple[Choice, ...]
    trace: tuple[TraceEntry, ...]
    events: tuple[Event, ...]
    result: Result
