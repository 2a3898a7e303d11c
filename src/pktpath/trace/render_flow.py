"""``pktpath flow`` output: JSON (shared/spec/flow-json.md) and the exchange as text."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from pktpath.engine.flow import FlowPacket
from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, TCP_FLAG_NAMES
from pktpath.trace.render_json import outcome_json, packet_json
from pktpath.trace.render_text import render_outcome


def flags_text(flags: int) -> str:
    return ",".join(n for n, b in TCP_FLAG_NAMES.items() if flags & b)


def flow_packet_json(fp: FlowPacket) -> dict[str, Any]:
    pkt = packet_json(fp.packet)
    if fp.packet.proto == IPPROTO_TCP:
        pkt["tcp_flags"] = flags_text(fp.packet.tcp_flags)
    if fp.packet.proto == IPPROTO_ICMP:
        pkt["icmp_id"] = fp.packet.icmp_id
    doc: dict[str, Any] = {"step": fp.step, "role": fp.role, "packet": pkt}
    if fp.walk is None:
        doc.update({"trace": [], "events": [], "result": {
            "disposition": "not-received", "oif": None, "packet": {k: pkt.get(k) for k in
                                                                    ("src", "dst", "sport", "dport", "mark")},
            "reason": "the responder's answer never reaches this host (--reply-iif none)"}})
    else:
        doc.update(outcome_json(fp.walk.outcome))
    doc["conntrack"] = list(fp.conntrack)
    return doc


def flow_json(packets: list[FlowPacket]) -> dict[str, Any]:
    return {"packets": [flow_packet_json(p) for p in packets]}


def render_flow(console: Console, packets: list[FlowPacket]) -> None:
    for fp in packets:
        p = packet_json(fp.packet)
        where = "sent by this host" if fp.packet.local else f"arrives on {fp.packet.iif}"
        extra = f" [{flags_text(fp.packet.tcp_flags)}]" if fp.packet.proto == IPPROTO_TCP else ""
        ports = f":{p['sport']} -> " if p["sport"] is not None else " -> "
        console.print(Text(f"\n#{fp.step} {fp.role}: {p['src']}{ports}{p['dst']}"
                           f"{':' + str(p['dport']) if p['dport'] is not None else ''} {p['proto']}{extra}, {where}",
                           style="bold"))
        if fp.walk is None:
            console.print(Text("=> NOT RECEIVED: the responder's answer never reaches this host", style="bold red"))
            continue
        render_outcome(console, fp.walk.outcome)
        for entry in fp.conntrack:
            o, r = entry["orig"], entry["reply"]
            assert isinstance(o, dict) and isinstance(r, dict)
            console.print(Text(f"  conntrack: {entry['proto']} {entry['state'] or ''} "
                               f"{o['src']}->{o['dst']} | reply {r['src']}->{r['dst']} {entry['flags']}", style="blue"))
