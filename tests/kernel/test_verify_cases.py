"""verify as the engine of the kernel cross-check: pktpath against the live kernel on every
kernel-recorded trace case (``shared/kernel-cases/trace``; their snapshots start raw
PREROUTING/OUTPUT with ``-j TRACE``, so the TRACE rule's own entry is stripped)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pktpath.verify import render, verify_snapshot

REPO = Path(__file__).resolve().parents[2]
TRACE_CASES = Path(os.environ.get("PKTPATH_KERNEL_CASES", REPO.parent / "shared" / "kernel-cases")) / "trace"
CASES = sorted(p for p in TRACE_CASES.glob("seed-*") if (p / "packet.json").exists()) if TRACE_CASES.is_dir() else []


@pytest.mark.kernel
@pytest.mark.parametrize("case", CASES or [None], ids=[p.name for p in CASES] or ["no-cases"])
def test_pktpath_agrees_with_the_live_kernel(case: Path | None, request: pytest.FixtureRequest) -> None:
    if case is None:
        pytest.skip(f"kernel cases not found at {TRACE_CASES} (set PKTPATH_KERNEL_CASES)")
    request.getfixturevalue("kernel_sandbox")
    v = verify_snapshot(case, json.loads((case / "packet.json").read_text()))
    assert v.verdict == "agree", render(v)
