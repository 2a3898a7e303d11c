"""The human explanation of a trace: hooks, rules with file:line, NAT, routing, verdict."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from pktpath.model.packet import Packet
from pktpath.trace.events import PathOutcome
from pktpath.trace.render_json import packet_json

STYLE = {"hook": "bold cyan", "rule": "", "route": "magenta", "nat": "yellow", "conntrack": "blue",
         "decision": "bold yellow", "note": "dim", "result": "bold"}
DISPOSITION_STYLE = {"local": "green", "forwarded": "green", "sent": "green", "dropped": "red",
                     "rejected": "red", "unroutable": "red"}


def render_outcome(console: Console, o: PathOutcome) -> None:
    for ev in o.events:
        if ev.kind == "result":
            continue
        indent = "" if ev.kind == "hook" else "  "
        line = Text(indent)
        if ev.kind == "rule":
            label, _, rest = ev.message.partition("  ")
            line.append(label, style="bold")
            if rest:
                line.append("  " + rest)
            origin = ev.data.get("origin")
            if origin:
                line.append(f"   [{origin}]", style="dim")
            if ev.data.get("mark"):
                line.append(f"   (packet mark {ev.data['mark']:#x})", style="dim cyan")
        else:
            line.append(ev.message, style=STYLE.get(ev.kind, ""))
        console.print(line)
        if ev.kind == "route":
            for step in ev.data.get("steps") or ():
                console.print(Text(f"      {step}", style="dim"))
    r = o.result
    verdict = Text("=> ")
    verdict.append(r.disposition.upper(), style="bold " + DISPOSITION_STYLE.get(r.disposition, ""))
    verdict.append(f": {r.reason}")
    console.print(verdict)


def render_trace(console: Console, pkt: Packet, outcomes: list[PathOutcome], notes: tuple[str, ...] = (),
                 all_paths: bool = False) -> None:
    p = packet_json(pkt)
    where = "sent by a local process" if pkt.local else f"arriving on {pkt.iif}"
    ports = f" {p['sport']} -> {p['dport']}" if p["sport"] is not None else ""
    console.print(Text(f"packet {p['src'] or '(source chosen by the kernel)'} -> {p['dst']} "
                       f"{p['proto']}{ports}, {where}", style="bold"))
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"))
    if len(outcomes) == 1:
        render_outcome(console, outcomes[0])
        return
    console.print(Text(f"{len(outcomes)} possible fates (the snapshot cannot decide every rule):", style="bold yellow"))
    for i, o in enumerate(outcomes, 1):
        console.print(Text(f"  path {i} ({_likelihood(o)}): {_summary(o)}"))
    shown = outcomes if all_paths else outcomes[:1]
    for i, o in enumerate(shown, 1):
        console.print(Text(f"\n--- path {i} ({_likelihood(o)}) ---", style="bold"))
        for c in o.choices:
            outcome = "matched" if c.matched else "did not match"
            console.print(Text(f"  choice: {c.id} {outcome} ({c.why})", style="yellow"))
        render_outcome(console, o)
    if not all_paths:
        console.print(Text(f"\n({len(outcomes) - 1} more paths: --all-paths shows each in full)", style="dim"))


def _likelihood(o: PathOutcome) -> str:
    return "unknown likelihood" if o.probability is None else f"probability {o.probability:.4g}"


def _summary(o: PathOutcome) -> str:
    nat = [e.message for e in o.events if e.kind == "nat" and " applied at " not in e.message]
    r = o.result
    return (", ".join(nat) + " -> " if nat else "") + f"{r.disposition} ({r.reason})"
