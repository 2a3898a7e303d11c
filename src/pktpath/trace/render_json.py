"""The ``pktpath trace --format json`` object (shared/spec/trace-json.md)."""

from __future__ import annotations

from typing import Any

from pktpath.engine.skb import proto_name
from pktpath.model.addr import int_to_ip
from pktpath.model.packet import Packet
from pktpath.trace.events import PathOutcome
from pktpath.trace.records import encode, events_text, trace_text


def packet_json(pkt: Packet) -> dict[str, Any]:
    out: dict[str, Any] = {"iif": pkt.iif, "src": int_to_ip(pkt.src) if pkt.src is not None else None,
                           "dst": int_to_ip(pkt.dst), "proto": proto_name(pkt.proto),
                           "sport": pkt.sport, "dport": pkt.dport, "mark": pkt.mark}
    if pkt.local:
        out["local"] = True
    if pkt.icmp_type is not None:
        out["icmp_type"], out["icmp_code"] = pkt.icmp_type, pkt.icmp_code
    return out


def outcome_json(o: PathOutcome) -> dict[str, Any]:
    return {"trace": [e.to_json() for e in o.trace], "events": [e.to_json() for e in o.events],
            "result": o.result.to_json()}


def trace_json(pkt: Packet, outcomes: list[PathOutcome], notes: tuple[str, ...] = ()) -> dict[str, Any]:
    first = outcomes[0]
    doc: dict[str, Any] = {"packet": packet_json(pkt), **outcome_json(first)}
    doc["paths"] = [{"probability": None if o.probability is None else round(o.probability, 6),
                     "choices": [c.to_json() for c in o.choices], **outcome_json(o)} for o in outcomes]
    if notes:
        doc["notes"] = list(notes)
    return doc


def outcome_json_text(o: PathOutcome) -> str:
    """``"trace":[...],"events":[...],"result":{...}`` of ``outcome_json(o)`` as compact JSON
    text (what ``json.dumps`` writes inside the object), from the walk's records when it has them."""
    if o.trace_records is not None:
        trace = trace_text(o.trace_records)
    else:
        trace = ",".join([encode(e.to_json()) for e in o.trace])
    if o.event_records is not None:
        events = events_text(o.event_records)
    else:
        events = ",".join([encode(e.to_json()) for e in o.events])
    return f'"trace":[{trace}],"events":[{events}],"result":{encode(o.result.to_json())}'


def trace_json_text(pkt: Packet, outcomes: list[PathOutcome], notes: tuple[str, ...] = ()) -> str:
    """``json.dumps(trace_json(pkt, outcomes, notes), separators=(",", ":"))``, byte for byte,
    without building the document: each outcome's trace and events are written once (the
    first outcome is both the document's body and ``paths[0]``)."""
    bodies = [outcome_json_text(o) for o in outcomes]
    parts = ['{"packet":', encode(packet_json(pkt)), ",", bodies[0], ',"paths":[']
    for i, (o, body) in enumerate(zip(outcomes, bodies, strict=True)):
        head = encode({"probability": None if o.probability is None else round(o.probability, 6),
                       "choices": [c.to_json() for c in o.choices]})
        parts += ("," if i else "", head[:-1], ",", body, "}")
    parts.append("]")
    if notes:
        parts += (',"notes":', encode(list(notes)))
    parts.append("}")
    return "".join(parts)
