"""--batch: one result per input line, in order, equal to tracing each packet alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pktpath.cli import batch
from pktpath.cli.main import cli

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "home-router")


def test_batch_equals_single_traces_in_order(tmp_path: Path) -> None:
    lines = []
    for port in range(100):
        if port % 2:
            lines.append(json.dumps({"iif": "eth0", "src": "198.51.100.7", "dst": "203.0.113.2", "proto": "tcp",
                                     "sport": 1000 + port, "dport": 8080}))
        else:
            lines.append(f"--iif eth1 --src 192.168.1.50 --dst 93.184.216.34 --sport {1000 + port} --dport 443")
    batch = tmp_path / "packets.txt"
    batch.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(cli, ["trace", EXAMPLE, "--batch", str(batch), "--jobs", "2"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in res.output.splitlines()]
    assert [o["packet"]["sport"] for o in out] == [1000 + p for p in range(100)]
    single = CliRunner().invoke(cli, ["trace", EXAMPLE, "--iif", "eth0", "--src", "198.51.100.7", "--dst",
                                      "203.0.113.2", "--sport", "1001", "--dport", "8080", "--format", "json"])
    assert json.loads(single.output) == out[1]


def test_batch_bad_line_names_it_and_exits_2(tmp_path: Path) -> None:
    batch = tmp_path / "packets.txt"
    batch.write_text('--iif eth0 --src 10.0.0.1 --dst 203.0.113.2\n{"iif": "eth0", "dst": \n')
    res = CliRunner().invoke(cli, ["trace", EXAMPLE, "--batch", str(batch)])
    assert res.exit_code == 2
    errors = [json.loads(x) for x in res.output.splitlines() if x.startswith('{"error"')]
    assert errors[0]["line"] == 2 and "not valid JSON" in errors[0]["error"]


def _example_batch(n: int) -> tuple[object, object, list[str]]:
    from pktpath.engine.path import Engine
    from pktpath.engine.simulate import build_host
    from pktpath.io.snapshot import load_snapshot

    snap = load_snapshot(EXAMPLE)
    lines = [json.dumps({"iif": "eth0", "src": "198.51.100.7", "dst": "203.0.113.2", "proto": "tcp",
                         "sport": 1000 + i, "dport": 8080 if i % 3 else 22}) for i in range(n)]
    return snap, Engine(build_host(snap)), lines


def test_forked_workers_keep_order_through_slots_and_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks over three workers, with results in shared memory and, when a chunk does
    not fit its slot, through the pipe: the same lines in the same order as one process."""
    snap, engine, lines = _example_batch(300)
    alone = list(batch.run_batch(snap, engine, lines, "b", jobs=1))  # type: ignore[arg-type]
    assert list(batch.run_batch(snap, engine, lines, "b", jobs=3)) == alone  # type: ignore[arg-type]
    monkeypatch.setattr(batch, "SLOT", 4096)  # smaller than one result line: every chunk via the pipe
    assert list(batch.run_batch(snap, engine, lines, "b", jobs=2)) == alone  # type: ignore[arg-type]


def test_a_failing_worker_is_reported_in_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    snap, engine, lines = _example_batch(200)
    real = batch._trace_one

    def failing(item: tuple[int, str]) -> str:
        if item[0] == 150:
            raise RuntimeError("boom at 150")
        return real(item)

    monkeypatch.setattr(batch, "_trace_one", failing)
    with pytest.raises(RuntimeError, match="boom at 150"):
        list(batch.run_batch(snap, engine, lines, "b", jobs=2))  # type: ignore[arg-type]
