"""The public entry point: a snapshot and a packet in, every possible fate out."""

from __future__ import annotations

from pktpath.engine.conntrack import ConntrackTable, from_entry
from pktpath.engine.host import Host
from pktpath.engine.path import Engine
from pktpath.model.packet import Packet
from pktpath.model.snapshot import HostSnapshot
from pktpath.model.xtables import Ruleset, Target
from pktpath.trace.events import PathOutcome


def ruleset_needs_conntrack(ruleset: Ruleset) -> bool:
    """Does any rule load an extension that turns conntrack on in the namespace (observed 4)?"""
    for table in ruleset.tables.values():
        if table.facts is not None:
            if table.facts.needs_conntrack:
                return True
            continue
        for chain in table.chains.values():
            for rule in chain.rules:
                if any(m.needs_conntrack for m in rule.matches):
                    return True
                if isinstance(rule.target, Target) and rule.target.needs_conntrack:
                    return True
    return False


def build_host(snap: HostSnapshot, conntrack: ConntrackTable | None = None) -> Host:
    """The host ready to walk; its conntrack table holds the snapshot's ``conntrack.txt``."""
    table = conntrack or ConntrackTable([from_entry(e) for e in snap.conntrack])
    enabled = ruleset_needs_conntrack(snap.ruleset) or bool(table.conns)
    return Host(snap.ruleset, snap.net, snap.ipsets, table, enabled)


def simulate(snap: HostSnapshot, pkt: Packet) -> list[PathOutcome]:
    """Walk ``pkt`` through the host; one outcome per possible fate, most probable first."""
    return Engine(build_host(snap)).explore(pkt)
