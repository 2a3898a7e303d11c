"""``verify``: pktpath's prediction against the real kernel, for one snapshot and one packet.

1. pktpath predicts, in-process (a snapshot pktpath cannot read is an error, exit 2);
2. the sandbox (``pktpath.sandbox``) rebuilds the snapshot in fresh network namespaces,
   sends the packet, captures the TRACE lines and the packet leaving, and tears down --
   on every exit path, Ctrl-C included;
3. the two are compared line by line.

Verdicts: ``agree`` (exit 0), ``differ`` (1), ``inconclusive`` (2: they differ, but the
sandbox could not reproduce something that may decide this packet's path -- saying so
instead of blaming pktpath).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pktpath.errors import PktpathError
from pktpath.sandbox import KernelRun, SandboxError, sandbox_available
from pktpath.sandbox.snapshot import opened
from pktpath.verify.args import parse_words
from pktpath.verify.compare import Comparison, PathComparison, compare_prediction, random_ranges
from pktpath.verify.predict import predict
from pktpath.verify.sandbox_ext import (
    VerifySandbox,
    meaningful_note,
    nfacct_objects,
    repair_marks,
    send_limitations,
    split_warnings,
    stand_ins,
    strip_own_trace_rule,
)

EXIT = {"agree": 0, "differ": 1, "inconclusive": 2}


class VerifyError(PktpathError):
    """verify could not produce a verdict (no root, unreadable snapshot, sandbox failure)."""


@dataclass
class Verification:
    snapshot: str
    args: list[str]
    verdict: str
    prediction: dict[str, Any]
    kernel: KernelRun
    comparison: Comparison
    kernel_release: str
    stand_ins: list[str] = field(default_factory=list)
    unreproduced: list[str] = field(default_factory=list)  # may decide this packet's path
    notes: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return EXIT[self.verdict]

    @property
    def chosen(self) -> PathComparison:
        return self.comparison.chosen

    def first_difference(self) -> dict[str, Any] | None:
        c = self.chosen
        i = c.first
        if i is None:
            return None
        if i < len(c.rows):
            row = c.rows[i]
            return {"where": "trace", "index": i, "fields": list(row.differs),
                    "pktpath": dict(row.pktpath) if row.pktpath else None,
                    "kernel": dict(row.kernel) if row.kernel else None}
        return {"where": "result", "index": None, "fields": list(c.result_differs),
                "pktpath": dict(c.result), "kernel": dict(self.kernel.result)}

    def to_json(self) -> dict[str, Any]:
        c = self.chosen
        return {
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "snapshot": self.snapshot,
            "args": self.args,
            "kernel_release": self.kernel_release,
            "pktpath": {"trace": [dict(e) for e in c.trace], "result": dict(c.result),
                        "path": c.path, "paths": len(self.comparison.paths), "probability": c.probability,
                        "choices": [dict(x) for x in c.choices]},
            "kernel": {"trace": self.kernel.trace, "result": self.kernel.result, "errno": self.kernel.errno,
                       "log": self.kernel.raw_log, "evidence": self.kernel.evidence},
            "first_difference": self.first_difference(),
            "differences": list(c.diffs),
            "stand_ins": self.stand_ins,
            "unreproduced": self.unreproduced,
            "notes": self.notes,
        }


def random_value_notes(prediction: Mapping[str, Any], chosen: PathComparison,
                       kernel_result: Mapping[str, Any]) -> list[str]:
    """Say which fields the kernel drew differently where pktpath declares a random draw."""
    ranges = random_ranges(prediction.get("events", []))
    kernel_packet = kernel_result.get("packet") or {}
    notes: list[str] = []
    for f in chosen.random:
        where = f" in {ranges[f][0]}-{ranges[f][1]}" if f in ranges else ""
        notes.append(f"{f}: the kernel drew {kernel_packet.get(f, 'another value')} at random{where}, pktpath shows "
                     f"{(chosen.result.get('packet') or {}).get(f)} and says the kernel picks it at random "
                     "(result.uncertain): not a difference")
    return notes


def require_sandbox() -> None:
    ok, why = sandbox_available()
    if ok:
        return
    if "root" in why:
        raise VerifyError("pktpath verify needs root: it builds network namespaces and loads rules into them "
                          "(run it with sudo)")
    raise VerifyError(f"pktpath verify cannot build its sandbox here: {why}")


def verify_snapshot(snapshot: Path, args: Sequence[str], *, predict_from: Path | None = None,
                    lenient: bool = False, timeout: float = 10.0, check_root: bool = True) -> Verification:
    """Verify pktpath against the kernel for one snapshot (directory or .tar.gz) and packet.

    ``predict_from``: take pktpath's prediction from this other snapshot instead (the
    kernel still runs ``snapshot``) -- how the tests check that a difference is caught.
    """
    words = list(args)
    packet = parse_words(words)
    local = packet.local
    if check_root:
        require_sandbox()
    try:
        with opened(Path(snapshot)) as root:
            iptables_path = root / "iptables-save.txt"
            if not iptables_path.exists():
                raise VerifyError(f"{snapshot}: no iptables-save.txt; the sandbox loads iptables rules only")
            iptables = iptables_path.read_text()
            try:
                prediction = predict(predict_from or root, words, lenient=lenient)
            except PktpathError as exc:
                raise VerifyError(f"pktpath cannot predict this packet: {exc}") from exc
            nfacct = nfacct_objects(iptables)
            notes, decisive = stand_ins(root, packet.iif, nfacct)
            decisive += send_limitations(root, local, packet.src)
            pred_notes = [n for n in prediction.get("notes", []) if meaningful_note(root, str(n))]
            peer_macs = {packet.iif: packet.mac_src} if packet.iif and packet.mac_src else {}
            with VerifySandbox(root, peer_macs=peer_macs, nfacct=nfacct) as sandbox:
                run = sandbox.send(words, timeout=timeout)
            strip = strip_own_trace_rule(iptables, local)
    except SandboxError as exc:
        raise VerifyError(f"sandbox: {exc}") from exc
    run, repaired = repair_marks(run)
    comparison = compare_prediction(prediction, run.trace, run.result, local=local, strip=strip)
    relevant, harmless = split_warnings(run.evidence.get("warnings", []))
    unreproduced = decisive + relevant
    verdict = "agree" if comparison.agree else ("inconclusive" if unreproduced else "differ")
    extra = random_value_notes(prediction, comparison.chosen, run.result)
    extra += [f"not reproduced (does not decide the path): {w}" for w in harmless]
    if repaired:
        extra.append("marks of kernel lines that quote an ICMP payload were read after the quote")
    extra += list(run.evidence.get("notes", []))
    extra += pred_notes
    return Verification(str(snapshot), words, verdict, prediction, run, comparison, os.uname().release,
                        notes, unreproduced, extra)
