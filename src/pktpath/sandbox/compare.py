"""Compare a trace/result pair with a kernel case, as kernel-cases/check/compare.py does.

Trace ids in order and, per entry, iif oif src dst proto sport dport mark; the result's
disposition, its oif when forwarded/sent, and the packet fields the expectation has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FIELDS = ("iif", "oif", "src", "dst", "proto", "sport", "dport", "mark")
PACKET_FIELDS = ("src", "dst", "sport", "dport", "mark")


def _norm(name: str, v: Any) -> Any:
    if v == "" or v is None:
        return None
    if name == "proto":
        return str(v).lower()
    if name in ("sport", "dport", "mark"):
        try:
            return int(v, 0) if isinstance(v, str) else int(v)
        except ValueError:
            return v
    return v


def strip_trace_rule(trace: Sequence[Mapping[str, Any]], local: bool) -> list[Mapping[str, Any]]:
    """Drop a simulator's leading entries up to and including the TRACE rule's own entry."""
    first = "raw:OUTPUT:rule:1" if local else "raw:PREROUTING:rule:1"
    chain = first.rsplit(":", 2)[0]
    for i, e in enumerate(trace):
        if e.get("id") == first:
            if all(str(x.get("id", "")).startswith(chain + ":") for x in trace[:i]):
                return list(trace[i + 1:])
            break
    return list(trace)


def compare(expected: Mapping[str, Any], trace: Sequence[Mapping[str, Any]], result: Mapping[str, Any],
            *, local: bool = False, strip: bool = False) -> list[str]:
    """Differences between expected.json (trace, result) and a run; empty means agreement."""
    got = strip_trace_rule(trace, local) if strip else list(trace)
    want = list(expected["trace"])
    diffs: list[str] = []
    for i in range(max(len(got), len(want))):
        if i >= len(want):
            diffs.append(f"trace[{i}]: unexpected extra entry {got[i].get('id')}")
            continue
        w = want[i]
        if i >= len(got):
            diffs.append(f"trace[{i}]: missing entry {w['id']}")
            continue
        g = got[i]
        if g.get("id") != w["id"]:
            diffs.append(f"trace[{i}]: id {g.get('id')}, expected {w['id']}")
            continue
        diffs += [f"trace[{i}] {w['id']}: {f}={g.get(f)!r}, expected {w.get(f)!r}"
                  for f in FIELDS if _norm(f, g.get(f)) != _norm(f, w.get(f))]
    if len(got) != len(want):
        diffs.append(f"trace: {len(got)} entries, expected {len(want)}")
    wr = expected["result"]
    if result.get("disposition") != wr["disposition"]:
        diffs.append(f"result.disposition: {result.get('disposition')!r}, expected {wr['disposition']!r}")
    if wr["disposition"] in ("forwarded", "sent") and result.get("oif") != wr["oif"]:
        diffs.append(f"result.oif: {result.get('oif')!r}, expected {wr['oif']!r}")
    packet = result.get("packet")
    gp: Mapping[str, Any] = packet if isinstance(packet, Mapping) else {}
    wp: Mapping[str, Any] = wr.get("packet") or {}
    diffs += [f"result.packet.{f}: {gp.get(f)!r}, expected {wp[f]!r}"
              for f in PACKET_FIELDS if f in wp and _norm(f, gp.get(f)) != _norm(f, wp[f])]
    return diffs
