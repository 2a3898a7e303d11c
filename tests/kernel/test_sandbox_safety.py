"""The sandbox leaves the machine as it found it, on success, on error and on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import pktpath.sandbox.sandbox as sandbox_module
from pktpath.sandbox import KernelRun, Sandbox, SandboxError
from pktpath.sandbox.hostlog import ALL_NETNS, STATE_FILE
from pktpath.sandbox.netns import NETNS_DIR, OWNER_DIR

pytestmark = pytest.mark.kernel

RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -j ACCEPT
COMMIT
"""
FWD = ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "tcp"]
Run = Callable[..., KernelRun]
Make = Callable[..., Path]


def _cmd(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def init_namespace_state() -> dict[str, str]:
    """What must not change in the initial namespace (iptables-save minus its timestamps)."""
    save = re.sub(r"(?m)^#.*\n", "", _cmd("iptables-legacy-save"))
    return {
        "links": _cmd("ip", "-j", "link", "show"),
        "addrs": _cmd("ip", "-j", "addr", "show"),
        "routes": _cmd("ip", "-j", "route", "show", "table", "all"),
        "rules": _cmd("ip", "-j", "rule", "show"),
        "iptables": save,
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }


def nf_log_baseline() -> str:
    """The value nf_log_all_netns returns to once no sandbox anywhere is open."""
    if STATE_FILE.exists():
        return str(json.loads(STATE_FILE.read_text())["saved"])
    return ALL_NETNS.read_text().strip()


def our_namespaces() -> list[str]:
    prefix = f"ppk-{os.getpid()}-"
    names = [p.name for p in NETNS_DIR.iterdir()] if NETNS_DIR.exists() else []
    records = [p.name for p in OWNER_DIR.iterdir()] if OWNER_DIR.exists() else []
    return sorted(n for n in names + records if n.startswith(prefix))


def assert_left_clean(baseline: str) -> None:
    assert our_namespaces() == []
    if not STATE_FILE.exists():  # other processes' sandboxes may still hold the setting
        assert ALL_NETNS.read_text().strip() == baseline
    else:
        users = json.loads(STATE_FILE.read_text())["users"].values()
        assert os.getpid() not in users


def test_initial_namespace_untouched(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    before, baseline = init_namespace_state(), nf_log_baseline()
    run = kernel_sandbox(make_snapshot(tmp_path / "s", RULES), FWD)
    assert run.result["disposition"] == "forwarded"
    assert init_namespace_state() == before
    assert_left_clean(baseline)


def test_cleanup_when_build_fails(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    baseline = nf_log_baseline()
    broken = RULES.replace("-j ACCEPT", "-m no-such-match -j ACCEPT")
    with pytest.raises(SandboxError, match="iptables-legacy-restore"):
        kernel_sandbox(make_snapshot(tmp_path / "s", broken), FWD)
    assert_left_clean(baseline)


def test_cleanup_on_keyboard_interrupt(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = nf_log_baseline()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_module, "send_wire", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kernel_sandbox(make_snapshot(tmp_path / "s", RULES), FWD)
    assert_left_clean(baseline)


def test_cleanup_when_test_body_fails(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    baseline = nf_log_baseline()
    with pytest.raises(AssertionError), Sandbox(make_snapshot(tmp_path / "s", RULES)) as sandbox:
        assert our_namespaces() != []
        assert sandbox.send(FWD).result["disposition"] == "local"  # wrong on purpose
    assert_left_clean(baseline)
