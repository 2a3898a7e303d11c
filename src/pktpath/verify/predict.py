"""pktpath's own answer for a snapshot and a packet, computed in-process.

The same document ``pktpath trace --format json`` prints (shared/spec/trace-json.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pktpath.verify.args import parse_words


def predict(snapshot: Path, words: Sequence[str], *, without_conntrack: bool = True,
            lenient: bool = False) -> dict[str, Any]:
    """-> the trace JSON document; ``without_conntrack`` starts from an empty conntrack table
    (as the sandbox does), whatever ``conntrack.txt`` holds."""
    from pktpath.cli.packet_args import build_packet
    from pktpath.engine.simulate import simulate
    from pktpath.io.snapshot import load_snapshot
    from pktpath.trace.render_json import trace_json

    a = parse_words(words)
    snap = load_snapshot(snapshot, lenient)
    if without_conntrack and snap.conntrack:
        snap = dataclasses.replace(snap, conntrack=())
    pkt = build_packet(snap.net, iif=a.iif, local=a.local, src=a.src, dst=a.dst or "", proto=a.proto or "tcp",
                       sport=a.sport, dport=a.dport, icmp_type=a.icmp_type, tcp_flags=a.tcp_flags, mark=a.mark,
                       ttl=a.ttl, length=a.length, mac_src=a.mac_src, uid=a.uid)
    return trace_json(pkt, simulate(snap, pkt), snap.notes)
