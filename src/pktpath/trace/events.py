"""Structured trace events: what the engine tells its renderers (text, JSON).

Each event has a ``kind`` and a one-line ``message`` for people; ``data`` carries the
machine-readable details.  The engine never prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pktpath.trace.records import EventRecord, TraceRecord


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


class PathOutcome:
    """One possible fate of the packet: the choices that led to it and what happened.

    A walk hands over its records (``from_records``); ``trace`` and ``events`` are built
    from them the first time they are read (see ``pktpath.trace.records``)."""

    __slots__ = ("probability", "choices", "result", "_trace", "_events", "trace_records", "event_records")

    def __init__(self, probability: float | None, choices: tuple[Choice, ...], trace: tuple[TraceEntry, ...],
                 events: tuple[Event, ...], result: Result) -> None:
        self.probability = probability
        self.choices = choices
        self.result = result
        self._trace: tuple[TraceEntry, ...] | None = trace
        self._events: tuple[Event, ...] | None = events
        self.trace_records: Sequence[TraceRecord] | None = None
        self.event_records: Sequence[EventRecord] | None = None

    @classmethod
    def from_records(cls, probability: float | None, choices: tuple[Choice, ...],
                     trace_records: Sequence[TraceRecord], event_records: Sequence[EventRecord],
                     result: Result) -> PathOutcome:
        self = cls.__new__(cls)
        self.probability = probability
        self.choices = choices
        self.result = result
        self._trace = self._events = None
        self.trace_records = trace_records
        self.event_records = event_records
        return self

    @property
    def trace(self) -> tuple[TraceEntry, ...]:
        trace = self._trace
        if trace is None:
            assert self.trace_records is not None
            trace = self._trace = tuple([info.entry(st) for info, st, _ctinfo in self.trace_records])
        return trace

    @property
    def events(self) -> tuple[Event, ...]:
        events = self._events
        if events is None:
            from pktpath.trace.records import make_event

            assert self.event_records is not None
            events = self._events = tuple([make_event(rec) for rec in self.event_records])
        return events

    def _fields(self) -> tuple[object, ...]:
        return (self.probability, self.choices, self.trace, self.events, self.result)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, PathOutcome)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"PathOutcome(probability={self.probability!r}, choices={self.choices!r}, trace={self.trace!r}, "
                f"events={self.events!r}, result={self.result!r})")
