"""``pktpath verify --random N --seed S``: random scenarios, each through collect and verify.

For every scenario: generate it (``scenario.generate``), build it as a real namespace
(``hostbuild``), snapshot that namespace with ``pktpath collect --netns`` (so collect is
exercised too), delete it, then ``verify`` the snapshot: the sandbox rebuilds it and the
kernel's answer is compared with pktpath's.  Every scenario that does not agree is kept
as a snapshot directory (plus ``scenario.json``, ``packet.json``, ``verify.json``) with
the command that replays it.  Same seed, same scenarios.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pktpath.collect import collect
from pktpath.errors import PktpathError
from pktpath.sandbox.netns import trap_sigterm
from pktpath.verify.core import Verification, require_sandbox, verify_snapshot
from pktpath.verify.hostbuild import built
from pktpath.verify.scenario import Scenario, generate

Progress = Callable[[str], None]


@dataclass
class ScenarioOutcome:
    index: int
    verdict: str  # agree | differ | inconclusive | error
    summary: str = ""
    saved: str | None = None
    replay: str | None = None
    seconds: float = 0.0
    verification: Verification | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "verdict": self.verdict, "summary": self.summary,
                               "snapshot": self.saved, "replay": self.replay, "seconds": round(self.seconds, 2)}
        if self.verification is not None:
            out["first_difference"] = self.verification.first_difference()
        return out


@dataclass
class SweepReport:
    seed: int
    count: int
    out: Path
    outcomes: list[ScenarioOutcome]
    seconds: float

    def tally(self, verdict: str) -> int:
        return sum(1 for o in self.outcomes if o.verdict == verdict)

    @property
    def verified(self) -> int:
        return len(self.outcomes) - self.tally("error")

    @property
    def rate(self) -> float:
        return self.tally("agree") / self.verified if self.verified else 0.0

    @property
    def exit_status(self) -> int:
        if self.tally("differ"):
            return 1
        return 2 if self.tally("error") or self.tally("inconclusive") else 0

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "scenarios": self.count, "out": str(self.out),
                "agree": self.tally("agree"), "differ": self.tally("differ"),
                "inconclusive": self.tally("inconclusive"), "errors": self.tally("error"),
                "agreement_rate": round(self.rate, 4), "seconds": round(self.seconds, 1),
                "results": [o.to_json() for o in self.outcomes]}


def replay_command(snapshot: Path, scen: Scenario) -> str:
    return shlex.join(["pktpath", "verify", str(snapshot), *scen.packet])


def _summary(v: Verification) -> str:
    first = v.first_difference()
    if first is None:
        return "agree"
    if first["where"] == "trace":
        p, k = first["pktpath"], first["kernel"]
        left = p.get("id") if p else "(nothing)"
        right = k.get("id") if k else "(nothing)"
        fields = [f for f in first["fields"] if f != "id"]
        if fields:
            return (f"trace line {first['index'] + 1} {right}: " +
                    ", ".join(f"{f} pktpath={p.get(f) if p else None} kernel={k.get(f) if k else None}"
                              for f in fields))
        return f"trace line {first['index'] + 1}: pktpath {left}, kernel {right}"
    p, k = first["pktpath"], first["kernel"]
    return (f"result: pktpath {p.get('disposition')} {p.get('oif') or ''} {p.get('packet')}, "
            f"kernel {k.get('disposition')} {k.get('oif') or ''} {k.get('packet')}")


def _save(dest: Path, snap: Path, scen: Scenario, v: Verification | None, error: str | None) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    if snap.exists():
        shutil.copytree(snap, dest)
    else:
        dest.mkdir(parents=True)
    (dest / "scenario.json").write_text(json.dumps(scen.to_json(), indent=1) + "\n")
    (dest / "packet.json").write_text(json.dumps(scen.packet) + "\n")
    if v is not None:
        v.snapshot = str(dest)  # where it is kept, not the temporary directory it was verified in
        (dest / "verify.json").write_text(json.dumps(v.to_json(), indent=1) + "\n")
    if error is not None:
        (dest / "error.txt").write_text(error)


def run_one(seed: int, index: int, out: Path, *, keep_all: bool = False, timeout: float = 10.0) -> ScenarioOutcome:
    """Scenario ``index`` of ``seed``: build, collect, verify; saved under ``out`` unless it agrees."""
    t0 = time.monotonic()
    scen = generate(seed, index)
    dest = out / f"scenario-{index:04d}"
    v: Verification | None = None
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="pktpath-sweep-") as tmp:
        snap = Path(tmp) / "snapshot"
        try:
            with built(scen) as ns:
                collect(snap, netns=ns.name)
            v = verify_snapshot(snap, scen.packet, timeout=timeout, check_root=False)
            verdict, summary = v.verdict, _summary(v)
        except PktpathError as exc:
            verdict, summary, error = "error", str(exc).splitlines()[0], str(exc)
        except Exception as exc:  # a bug in the generator or verify: record it, keep sweeping
            verdict, summary, error = "error", f"{type(exc).__name__}: {exc}", traceback.format_exc()
        saved = replay = None
        if verdict != "agree" or keep_all:
            _save(dest, snap, scen, v, error)
            saved, replay = str(dest), replay_command(dest, scen)
    return ScenarioOutcome(index, verdict, summary, saved, replay, time.monotonic() - t0, v)


def run_sweep(count: int, seed: int, out: Path, *, jobs: int = 1, only: int | None = None, keep_all: bool = False,
              timeout: float = 10.0, progress: Progress | None = None) -> SweepReport:
    """Run scenarios 0..count-1 of ``seed`` (or just ``only``), ``jobs`` at a time."""
    require_sandbox()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    indices = [only] if only is not None else list(range(count))
    t0 = time.monotonic()
    trapped = trap_sigterm(True)  # SIGTERM unwinds through every scenario's cleanup, worker threads too
    try:
        outcomes = _run_all(indices, seed, out, jobs, keep_all, timeout, progress)
    finally:
        if trapped:
            trap_sigterm(False)
    report = SweepReport(seed, len(indices), out, sorted(outcomes, key=lambda o: o.index), time.monotonic() - t0)
    (out / "sweep.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return report


def _run_all(indices: list[int], seed: int, out: Path, jobs: int, keep_all: bool, timeout: float,
             progress: Progress | None) -> list[ScenarioOutcome]:
    outcomes: list[ScenarioOutcome] = []

    def one(i: int) -> ScenarioOutcome:
        o = run_one(seed, i, out, keep_all=keep_all, timeout=timeout)
        if progress is not None:
            progress(f"[{i:4d}] {o.verdict:<12} {o.seconds:5.1f}s  {'' if o.verdict == 'agree' else o.summary}")
        return o

    if jobs <= 1:
        outcomes = [one(i) for i in indices]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pktpath-sweep") as pool:
            try:
                outcomes = list(pool.map(one, indices))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # running scenarios clean up first
                raise
    return outcomes


def render_sweep(r: SweepReport) -> str:
    lines = [f"random sweep: seed {r.seed}, {r.count} scenarios in {r.seconds:.0f}s",
             f"  agree {r.tally('agree')}, differ {r.tally('differ')}, inconclusive {r.tally('inconclusive')}, "
             f"errors {r.tally('error')}",
             f"agreement: {r.tally('agree')}/{r.verified} verified scenarios ({100 * r.rate:.1f}%)"]
    bad = [o for o in r.outcomes if o.verdict != "agree"]
    if bad:
        lines.append("")
        lines.append(f"not agreeing (saved under {r.out}):")
    for o in bad:
        lines += [f"  #{o.index} {o.verdict}: {o.summary}", f"    snapshot: {o.saved}", f"    replay:   {o.replay}"]
    return "\n".join(lines) + "\n"
