"""Text rendering of a verification: pktpath beside the kernel, first difference marked."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from pktpath.verify.core import Verification


def _entry(e: Mapping[str, Any] | None, fields: tuple[str, ...]) -> str:
    if e is None:
        return "-"
    text = str(e.get("id"))
    shown = [f for f in fields if f != "id"]
    for f in shown:
        v = e.get(f)
        text += f" {f}={hex(v) if f == 'mark' and isinstance(v, int) else v}"
    return text


def _result(r: Mapping[str, Any]) -> str:
    parts = [str(r.get("disposition"))]
    if r.get("oif"):
        parts.append(f"oif={r['oif']}")
    packet = r.get("packet") or {}
    for f in ("src", "dst", "sport", "dport", "mark"):
        if packet.get(f) is not None:
            v = packet[f]
            parts.append(f"{f}={hex(v) if f == 'mark' and isinstance(v, int) else v}")
    return " ".join(parts)


def _diff(text: str) -> str:
    """pktpath.sandbox.compare words (expected = the kernel) as pktpath vs kernel."""
    if ", expected " not in text:
        return text
    head, _, rest = text.partition(": ")
    ours, _, theirs = rest.rpartition(", expected ")
    if "=" in ours:  # "mark=4, expected 5": name the field on both sides
        theirs = f"{ours.split('=', 1)[0]}={theirs}"
    return f"{head}: pktpath {ours}, kernel {theirs}"


def render(v: Verification) -> str:
    c = v.chosen
    first = c.first
    lines = [f"pktpath verify {shlex.quote(v.snapshot)} {shlex.join(v.args)}",
             f"kernel {v.kernel_release}, rebuilt in fresh network namespaces (iptables-legacy, TRACE)"]
    lines += [f"stand-in: {s}" for s in v.stand_ins]
    lines += [f"NOT REPRODUCED: {u}" for u in v.unreproduced]
    n = len(v.comparison.paths)
    if n > 1:
        which = f"path {c.path + 1} of {n}"
        if c.probability is not None:
            which += f" (probability {c.probability:g})"
        if c.choices:
            which += ": " + "; ".join(f"{x.get('id')} {'matched' if x.get('matched') else 'not matched'}"
                                      f" ({x.get('why')})" for x in c.choices)
        lines.append(("the kernel took pktpath's " if c.agree else "closest of pktpath's paths: ") + which)
    col = min(max([len(_entry(r.pktpath, r.differs if r.differs != ("id",) else ())) for r in c.rows]
                  + [len(_result(c.result)), len("pktpath")]) + 2, 72)
    lines += ["", f"      {'pktpath':<{col}} kernel"]
    for row in c.rows:
        mark = ">>" if row.index == first else "  "
        fields = row.differs if row.differs and row.differs != ("id",) else ()
        left = _entry(row.pktpath, fields)
        right = _entry(row.kernel, fields)
        note = "   <- first difference" if row.index == first else ("   <- differs" if row.differs else "")
        if row.random and not row.differs:
            left, right = _entry(row.pktpath, row.random), _entry(row.kernel, row.random)
            note = "   (random draw, see notes)"
        lines.append(f"{mark}{row.index + 1:>3} {left:<{col}} {right}{note}")
    mark = ">>" if first == len(c.rows) else "  "
    note = ("   <- first difference: " + ", ".join(c.result_differs)) if first == len(c.rows) else ""
    kp, pp = v.kernel.result.get("packet") or {}, c.result.get("packet") or {}
    if first != len(c.rows) and any(kp.get(f) != pp.get(f) for f in c.random):
        note += "   (random draw, see notes)"
    if v.kernel.errno:
        note += f"   (kernel: sendto() {v.kernel.errno})"
    lines.append(f"{mark}res {_result(c.result):<{col}} {_result(v.kernel.result)}{note}")
    lines.append("")
    if v.verdict == "agree":
        lines.append("verdict: AGREE -- pktpath predicted what the kernel did")
    elif v.verdict == "differ":
        lines.append("verdict: DIFFER")
        lines += [f"  {_diff(d)}" for d in c.diffs]
    else:
        lines.append("verdict: INCONCLUSIVE -- they differ, but the sandbox could not reproduce what may "
                     "decide this packet's path:")
        lines += [f"  {u}" for u in v.unreproduced]
        lines += [f"  {_diff(d)}" for d in c.diffs]
    lines += [f"note: {n_}" for n_ in v.notes]
    return "\n".join(lines) + "\n"

