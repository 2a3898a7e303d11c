"""Bad input never gives a traceback: exit status 2 and one message naming the file, the
line (or JSON path) and what was expected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "home-router"
PACKET = ["--iif", "eth0", "--src", "198.51.100.7", "--dst", "203.0.113.2", "--dport", "8080"]

CASES = [
    ("malformed-rule", "iptables-save.txt", lambda t: t.replace("-A INPUT -i lo -j ACCEPT", "-A INPUT -i lo -j"),
     PACKET, "iptables-save.txt:"),
    ("unknown-match", "iptables-save.txt",
     lambda t: t.replace("-A INPUT -i lo -j ACCEPT", "-A INPUT -m nope -j ACCEPT"), PACKET, "unknown match '-m nope'"),
    ("broken-json", "ip-addr.json", lambda t: t[:-10], PACKET, "ip-addr.json"),
    ("wrong-json-shape", "ip-route.json", lambda t: '{"dst": 1}', PACKET, "ip-route.json"),
    ("bad-sysctl-value", "sysctl.txt", lambda t: t + "garbage line without equals\n", PACKET, "sysctl.txt:"),
    ("missing-interface", None, None, ["--iif", "eth9", "--src", "1.2.3.4", "--dst", "5.6.7.8"], "eth9"),
    ("bad-address", None, None, ["--iif", "eth0", "--src", "1.2.3", "--dst", "5.6.7.8"], "--src"),
    ("no-ruleset", "iptables-save.txt", None, PACKET, "iptables-save.txt"),
]


@pytest.mark.parametrize("name,edit,args,message", [(c[1], c[2], c[3], c[4]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_location(tmp_path: Path, name: str | None, edit: object, args: list[str],
                                         message: str) -> None:
    snap = tmp_path / "snap"
    shutil.copytree(EXAMPLE, snap)
    if name is not None:
        path = snap / name
        if edit is None:
            path.unlink()
        else:
            path.write_text(edit(path.read_text()))  # type: ignore[operator]
    res = CliRunner().invoke(cli, ["trace", str(snap), *args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and message in res.output


def test_missing_snapshot_dir() -> None:
    res = CliRunner().invoke(cli, ["trace", "/nonexistent/snap", *PACKET])
    assert res.exit_code == 2 and "no such snapshot" in res.output
