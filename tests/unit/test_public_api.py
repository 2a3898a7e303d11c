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


def test_snapshot_and_outcomes_pickle() -> None:
    """Library users hand these to other processes (rules are built lazily, trace entries
    from shared records: both must survive pickling)."""
    import pickle

    snap = pktpath.load_snapshot(EXAMPLE)
    pkt = pktpath.Packet(iif="eth0", src=pktpath.ip_to_int("198.51.100.7"), dst=pktpath.ip_to_int("203.0.113.2"),
                         sport=40000, dport=8080)
    out = pktpath.simulate(snap, pkt)
    snap2, out2 = pickle.loads(pickle.dumps((snap, out)))
    assert snap2.ruleset == snap.ruleset and out2 == out and out2[0].trace == out[0].trace
    assert pktpath.simulate(snap2, pkt) == out
