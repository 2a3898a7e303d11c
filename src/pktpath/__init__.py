"""pktpath: what does this Linux host do to this packet, and why?

Walks a packet through a host snapshot's netfilter hooks, conntrack, NAT and policy
routing offline, as the kernel would, and reports the kernel's own TRACE lines.

The public API (imported lazily, so ``pktpath --help`` stays fast)::

    from pktpath import load_snapshot, simulate, Packet, ip_to_int
    snap = load_snapshot("examples/home-router")
    pkt = Packet(iif="eth0", src=ip_to_int("198.51.100.7"), dst=ip_to_int("203.0.113.2"), sport=40000, dport=8080)
    for outcome in simulate(snap, pkt):      # one per possible fate, most probable first
        print(outcome.probability, [e.id for e in outcome.trace], outcome.result.disposition)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Packet", "PktpathError", "ip_to_int", "load_snapshot", "simulate"]

_EXPORTS = {
    "load_snapshot": "pktpath.io.snapshot",
    "simulate": "pktpath.engine.simulate",
    "Packet": "pktpath.model.packet",
    "ip_to_int": "pktpath.model.addr",
    "PktpathError": "pktpath.errors",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pktpath' has no attribute {name!r}")
