"""--batch: one result per input line, in order, equal to tracing each packet alone."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

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
