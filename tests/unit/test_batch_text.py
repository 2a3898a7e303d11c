"""A ``--batch`` line is written straight from the walk's records (trace/records.py,
render_json.trace_json_text); it must be, byte for byte, the compact form of the JSON that
``pktpath trace --format json`` builds as a document for the same packet alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT.parent / "shared" / "kernel-cases" / "trace"
KERNEL_CASES = sorted(p for p in CASES.glob("seed-*") if (p / "packet.json").exists()) if CASES.exists() else []
EXAMPLE_PACKETS = [
    ("home-router", "--iif eth0 --src 198.51.100.7 --dst 203.0.113.2 --proto tcp --dport 8080"),
    ("home-router", "--iif eth1 --src 192.168.1.50 --dst 93.184.216.34 --sport 40000 --dport 443"),
    ("home-router", "--local --dst 192.168.1.50 --proto udp --dport 53"),
    ("k8s-calico-node", "--iif eth0 --src 192.0.2.50 --dst 10.10.0.11 --proto tcp --dport 30080"),
    ("k8s-calico-node", "--iif cali45e50a7b62e --src 10.244.36.130 --dst 10.96.45.10 --proto tcp --dport 8080"),
    ("docker-ufw", "--iif eth0 --src 198.51.100.20 --dst 203.0.113.10 --proto tcp --dport 5432"),
    ("dual-uplink-router", "--iif lan0 --src 192.168.10.20 --dst 8.8.8.8 --proto udp --dport 53"),
]


def _single_then_batch(snapshot: Path, args: list[str], tmp_path: Path) -> tuple[str, str]:
    runner = CliRunner()
    single = runner.invoke(cli, ["trace", str(snapshot), *args, "--format", "json"], catch_exceptions=False)
    assert single.exit_code == 0, single.output
    batch_file = tmp_path / "packets.txt"
    batch_file.write_text(" ".join(json.dumps(a) if " " in a else a for a in args) + "\n")
    batch = runner.invoke(cli, ["trace", str(snapshot), "--batch", str(batch_file), "--jobs", "1"],
                          catch_exceptions=False)
    assert batch.exit_code == 0, batch.output
    return json.dumps(json.loads(single.output), separators=(",", ":")), batch.output.rstrip("\n")


@pytest.mark.skipif(not KERNEL_CASES, reason="../shared/kernel-cases is absent")
@pytest.mark.parametrize("case", KERNEL_CASES, ids=[p.name for p in KERNEL_CASES])
def test_batch_line_is_the_single_trace_json_for_kernel_cases(case: Path, tmp_path: Path) -> None:
    args = json.loads((case / "packet.json").read_text())
    want, got = _single_then_batch(case, args, tmp_path)
    assert got == want


@pytest.mark.parametrize(("example", "args"), EXAMPLE_PACKETS, ids=[f"{e}:{a}" for e, a in EXAMPLE_PACKETS])
def test_batch_line_is_the_single_trace_json_for_examples(example: str, args: str, tmp_path: Path) -> None:
    want, got = _single_then_batch(ROOT / "examples" / example, args.split(), tmp_path)
    assert got == want
