"""The public sample of kernel-recorded cases (../shared/kernel-cases): pktpath's JSON must
equal what the real kernel did, compared exactly as the shared checks compare."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "kernel-cases"
CHECK = CASES / "check"


def _cases(kind: str, marker: str) -> list[Path]:
    root = CASES / kind
    return sorted(p for p in root.glob("seed-*") if (p / marker).exists()) if root.exists() else []


def _checker(name: str) -> Any:
    if str(CHECK) not in sys.path:
        sys.path.insert(0, str(CHECK))
    return __import__(name)


def _run(args: list[str]) -> Any:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


TRACE_CASES = _cases("trace", "expected.json")


@pytest.mark.skipif(not TRACE_CASES, reason="../shared/kernel-cases is absent")
@pytest.mark.parametrize("case", TRACE_CASES, ids=[p.name for p in TRACE_CASES])
def test_trace_case(case: Path) -> None:
    compare = _checker("compare")
    iptsave = _checker("iptsave")
    args = json.loads((case / "packet.json").read_text())
    exp = json.loads((case / "expected.json").read_text())
    out = _run(["trace", str(case), *args, "--format", "json"])
    tables = iptsave.parse((case / "iptables-save.txt").read_text())
    diffs = compare.compare_case(str(case), exp, args, out, tables, False)
    assert not diffs, "\n".join(diffs)


FLOW_CASES = _cases("flow", "flow.json")


@pytest.mark.skipif(not FLOW_CASES, reason="../shared/kernel-cases is absent")
@pytest.mark.parametrize("case", FLOW_CASES, ids=[p.name for p in FLOW_CASES])
def test_flow_case(case: Path) -> None:
    compare_flows = _checker("compare_flows")
    iptsave = _checker("iptsave")
    args = json.loads((case / "flow.json").read_text())
    exp = json.loads((case / "expected.json").read_text())
    out = _run(["flow", str(case), *args, "--format", "json"])
    tables = iptsave.parse((case / "iptables-save.txt").read_text())
    diffs = compare_flows.compare_exchange(exp, out, tables, False)
    assert not diffs, "\n".join(diffs)
