"""``pktpath route`` against the kernel-recorded ``ip route get`` answers.

Every query of shared/kernel-cases/route/*/queries.json goes through the CLI
(``--format json``) and is judged as shared/kernel-cases/check/compare_routes.py judges it:
the compared keys of route-json.md, absent keys standing for their defaults, flags as a
sorted list, any of the ``alternatives`` of a multipath answer, or the error name.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pktpath.cli.route_cmd import add_route_command, load_net_state

CASES = Path(__file__).resolve().parents[3] / "shared" / "kernel-cases"
KEYS = ["type", "dst", "from", "iif", "gateway", "dev", "prefsrc", "table", "flags"]
DEFAULTS: dict[str, object] = {"type": "unicast", "flags": []}

pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason=f"kernel cases not found at {CASES}")


def _queries() -> list[object]:
    out: list[object] = []
    for setup in sorted((CASES / "route").glob("seed-*")) if CASES.is_dir() else []:
        for i, query in enumerate(json.loads((setup / "queries.json").read_text())):
            out.append(pytest.param(setup, query, id=f"{setup.name}-q{i}"))
    return out


def norm(obj: dict[str, object]) -> dict[str, object]:
    """The compared view of one ``ip -j route get`` object (compare_routes.norm)."""
    view: dict[str, object] = {}
    for key in KEYS:
        value = obj.get(key, DEFAULTS.get(key))
        if key == "flags":
            value = sorted(str(x) for x in value) if isinstance(value, list) else value
        elif value is not None and not isinstance(value, str):
            value = str(value)
        view[key] = value
    return view


def judge(query: dict[str, object], got: object) -> list[str]:
    """Differences between our answer and the kernel's (compare_routes.judge)."""
    expected = query["expected"]
    assert isinstance(expected, dict)
    if "error" in expected:
        if not isinstance(got, dict) or "error" not in got:
            return [f"expected error {expected['error']!r}, got {json.dumps(got)[:300]}"]
        return [] if got["error"] == expected["error"] else [f"error {got['error']!r}, expected "
                                                            f"{expected['error']!r}"]
    if not (isinstance(got, list) and len(got) == 1 and isinstance(got[0], dict)):
        return [f"expected a list with one route object, got {json.dumps(got)[:300]}"]
    mine = norm(got[0])
    alternatives = query.get("alternatives") or []
    assert isinstance(alternatives, list)
    wants = [norm(a) for a in alternatives] or [norm(expected)]
    if mine in wants:
        return []
    best = min(wants, key=lambda w: sum(w[k] != mine[k] for k in KEYS))
    return [f"{k}: {mine[k]!r}, expected {best[k]!r}" for k in KEYS if mine[k] != best[k]]


@pytest.fixture(scope="module")
def cli() -> click.Group:
    @click.group()
    def group() -> None:
        """Test stand-in for the pktpath entry point."""

    add_route_command(group)
    return group


@pytest.mark.parametrize(("setup", "query"), _queries())
def test_route_query_agrees_with_kernel(cli: click.Group, setup: Path, query: dict[str, object]) -> None:
    args = query["args"]
    assert isinstance(args, list)
    result = CliRunner().invoke(cli, ["route", str(setup), *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    diffs = judge(query, json.loads(result.output))
    assert not diffs, f"{query['ip']}: {diffs}; kernel: {json.dumps(query['expected'])}"


@pytest.mark.parametrize("snapshot", sorted(CASES.glob("*/seed-*")) if CASES.is_dir() else [],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_case_snapshot_loads(snapshot: Path) -> None:
    net = load_net_state(snapshot)
    assert net.link("lo") is not None
    assert any(r.table == 255 for r in net.routes)


def test_text_format_explains(cli: click.Group) -> None:
    setup = CASES / "route" / "seed-003000"
    result = CliRunner().invoke(cli, ["route", str(setup), "--dst", "8.8.8.8"])
    assert result.exit_code == 0
    assert "rule 0: from all lookup local" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("8.8.8.8 via ")
