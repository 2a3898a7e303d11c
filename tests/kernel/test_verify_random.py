"""The ``verify --random`` sweep, as CI runs it: a fixed seed, a size that fits CI's time.

Every scenario goes generator -> namespace -> ``collect --netns`` -> sandbox -> kernel,
compared with pktpath.  A disagreement fails the test and names the saved snapshot and the
command that replays it.  ``PKTPATH_SWEEP_N`` / ``PKTPATH_SWEEP_SEED`` enlarge it locally.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pktpath.sandbox import KernelRun
from pktpath.verify.sweep import render_sweep, run_sweep

pytestmark = pytest.mark.kernel

CI_SEED = int(os.environ.get("PKTPATH_SWEEP_SEED", "20250"))
CI_SIZE = int(os.environ.get("PKTPATH_SWEEP_N", "15"))
CI_BUDGET = 120.0  # seconds
Run = Callable[..., KernelRun]


def test_random_sweep(kernel_sandbox: Run, tmp_path: Path) -> None:
    t0 = time.monotonic()
    report = run_sweep(CI_SIZE, CI_SEED, tmp_path / "sweep", jobs=2)
    elapsed = time.monotonic() - t0
    summary = render_sweep(report)
    assert report.tally("error") == 0, summary
    assert report.tally("differ") == 0 and report.tally("inconclusive") == 0, summary
    assert report.rate == 1.0
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["agree"] == CI_SIZE
    if CI_SIZE <= 15:
        assert elapsed < CI_BUDGET, f"the CI sweep took {elapsed:.0f}s"


def test_saved_scenario_replays(kernel_sandbox: Run, tmp_path: Path) -> None:
    """--keep-all saves a snapshot written by collect (with its manifest) and the replay command."""
    report = run_sweep(1, CI_SEED, tmp_path / "sweep", only=3, keep_all=True)
    (outcome,) = report.outcomes
    saved = Path(str(outcome.saved))
    assert outcome.index == 3
    for name in ("iptables-save.txt", "ip-addr.json", "ip-route.json", "ip-rule.json", "sysctl.txt", "backends.txt",
                 "collect.json", "scenario.json", "packet.json", "verify.json"):
        assert (saved / name).exists(), name
    packet = json.loads((saved / "packet.json").read_text())
    assert outcome.replay == " ".join(["pktpath", "verify", str(saved), *packet])
    assert json.loads((saved / "verify.json").read_text())["verdict"] == outcome.verdict
