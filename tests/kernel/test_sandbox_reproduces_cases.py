"""The sandbox must reproduce the kernel-recorded trace cases (recorded on this kernel).

Compared exactly as kernel-cases/check/compare.py compares: trace ids in order and per
entry iif oif src dst proto sport dport mark; result disposition, oif when forwarded or
sent, and the packet fields expected.json has.  Run in parallel with ``-n 2``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pktpath.sandbox import compare

REPO = Path(__file__).resolve().parents[2]
TRACE_CASES = Path(os.environ.get("PKTPATH_KERNEL_CASES", REPO.parent / "shared" / "kernel-cases")) / "trace"
CASES = sorted(p for p in TRACE_CASES.glob("seed-*") if (p / "expected.json").exists()) \
    if TRACE_CASES.is_dir() else []


@pytest.mark.kernel
@pytest.mark.parametrize("case", CASES or [None], ids=[p.name for p in CASES] or ["no-cases"])
def test_sandbox_reproduces_case(case: Path | None, request: pytest.FixtureRequest) -> None:
    if case is None:
        pytest.skip(f"kernel cases not found at {TRACE_CASES} (set PKTPATH_KERNEL_CASES)")
    run_trace = request.getfixturevalue("kernel_sandbox")
    args = json.loads((case / "packet.json").read_text())
    expected = json.loads((case / "expected.json").read_text())
    run = run_trace(case, args)
    diffs = compare(expected, run.trace, run.result, local="--local" in args)
    assert not diffs, "\n".join([
        *diffs,
        "expected trace: " + " ".join(e["id"] for e in expected["trace"]),
        "kernel trace:   " + " ".join(e["id"] for e in run.trace),
        f"expected result: {json.dumps(expected['result'])}",
        f"kernel result:   {json.dumps(run.result)}",
        f"evidence: {json.dumps(run.evidence)}",
    ])
    assert run.evidence["warnings"] == [], "snapshot not reproduced faithfully"
