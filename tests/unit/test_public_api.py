"""The documented library API (pktpath/__init__.py) works as its docstring shows."""

from __future__ import annotations

from pathlib import Path

import pktpath

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "home-router"


def test_docstring_example() -> None:
    snap = pktpath.load_snapshot(EXAMPLE)
    pkt = pktpath.Packet(iif="eth0", src=pktpath.ip_to_int("198.51.100.7"), dst=pktpath.ip_to_int("203.0.113.2"),
                         sport=40000, dport=8080)
    (outcome,) = pktpath.simulate(snap, pkt)
    assert outcome.probability == 1.0 and outcome.result.disposition == "forwarded"
    assert [e.id for e in outcome.trace][0] == "nat:PREROUTING:rule:1"
    assert "Packet" in pktpath.__all__
