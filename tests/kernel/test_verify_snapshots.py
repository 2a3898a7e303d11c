"""pktpath verify against the real kernel: agreement where pktpath is right, the right first
difference on a deliberately altered snapshot, stand-ins, and cleanup on every exit path."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import pktpath.sandbox.sandbox as sandbox_module
from pktpath.cli.collect_verify import add_commands
from pktpath.sandbox import KernelRun, Sandbox, SandboxError
from pktpath.sandbox.hostlog import ALL_NETNS, STATE_FILE
from pktpath.sandbox.netns import NETNS_DIR, OWNER_DIR
from pktpath.verify import VerifyError, render, verify_snapshot
from pktpath.verify.sandbox_ext import VerifySandbox

pytestmark = pytest.mark.kernel

RULES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -j MARK --set-xmark 0x4/0xffffffff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8000 -j DNAT --to-destination 10.0.0.1:22
-A POSTROUTING -o eth1 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A FORWARD -i eth0 -o eth1 -j web
-A web -p tcp -m tcp --dport 80 -j ACCEPT
-A web -p udp -j ACCEPT
COMMIT
"""
FWD = ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "tcp", "--sport", "1234",
       "--dport", "80"]
Run = Callable[..., KernelRun]
Make = Callable[..., Path]


def group() -> click.Group:
    @click.group()
    def g() -> None:
        pass

    add_commands(g)
    return g


def ours() -> list[str]:
    prefix = f"ppk-{os.getpid()}-"
    names = [p.name for p in NETNS_DIR.iterdir()] if NETNS_DIR.exists() else []
    records = [p.name for p in OWNER_DIR.iterdir()] if OWNER_DIR.exists() else []
    return sorted(n for n in names + records if n.startswith(prefix))


def shared_state() -> dict[str, Any] | None:
    """The sandboxes' shared nf_log_all_netns record (another process may be rewriting it)."""
    for _ in range(50):
        try:
            return dict(json.loads(STATE_FILE.read_text()))
        except FileNotFoundError:
            return None
        except ValueError:
            time.sleep(0.01)
    raise AssertionError(f"{STATE_FILE} stays unreadable")


def baseline() -> str:
    state = shared_state()
    return str(state["saved"]) if state else ALL_NETNS.read_text().strip()


def assert_clean(before: str) -> None:
    assert ours() == []
    state = shared_state()
    if state is None:  # no sandbox anywhere: the old value is back
        assert ALL_NETNS.read_text().strip() == before
    else:  # other processes' sandboxes hold the setting; we must not
        assert os.getpid() not in state["users"].values()


@pytest.mark.parametrize(("args", "disposition", "ids"), [
    (FWD, "forwarded", ["raw:PREROUTING:rule:1", "raw:PREROUTING:policy:2", "nat:PREROUTING:policy:2",
                        "filter:FORWARD:rule:1", "filter:web:rule:1", "nat:POSTROUTING:rule:1"]),
    (["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "tcp", "--dport", "8000"], "local",
     ["raw:PREROUTING:rule:1", "raw:PREROUTING:policy:2", "nat:PREROUTING:rule:1", "filter:INPUT:policy:1",
      "nat:INPUT:policy:1"]),
    (["--local", "--dst", "10.1.0.9", "--proto", "udp", "--dport", "53"], "sent",
     ["raw:OUTPUT:policy:1", "nat:OUTPUT:policy:1", "filter:OUTPUT:policy:1", "nat:POSTROUTING:rule:1"]),
    (["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "icmp"], "dropped",
     ["raw:PREROUTING:policy:2", "nat:PREROUTING:policy:2", "filter:FORWARD:rule:1", "filter:web:return:3",
      "filter:FORWARD:policy:2"]),
], ids=["forward-masquerade", "dnat-local", "local-send", "policy-drop"])
def test_agrees_where_pktpath_is_right(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path,
                                       args: list[str], disposition: str, ids: list[str]) -> None:
    before = baseline()
    v = verify_snapshot(make_snapshot(tmp_path / "s", RULES), args)
    assert v.verdict == "agree", render(v)
    assert v.exit_status == 0
    assert [e["id"] for e in v.kernel.trace] == ids
    assert v.kernel.result["disposition"] == disposition
    assert v.unreproduced == []
    assert_clean(before)


def test_altered_snapshot_differs_at_the_right_line(kernel_sandbox: Run, make_snapshot: Make,
                                                    tmp_path: Path) -> None:
    """pktpath predicts from a copy where the web rule says port 81: the kernel (real
    snapshot) accepts in web:rule:1, pktpath falls through to the udp rule and the tail."""
    real = make_snapshot(tmp_path / "real", RULES)
    altered = make_snapshot(tmp_path / "altered", RULES.replace("--dport 80 -j ACCEPT", "--dport 81 -j ACCEPT"))
    v = verify_snapshot(real, FWD, predict_from=altered)
    assert v.verdict == "differ" and v.exit_status == 1
    first = v.first_difference()
    assert first is not None
    assert (first["where"], first["index"], first["fields"]) == ("trace", 4, ["id"])
    assert first["pktpath"]["id"] == "filter:web:return:3"
    assert first["kernel"]["id"] == "filter:web:rule:1"
    text = render(v)
    assert ">>  5 filter:web:return:3" in text and "<- first difference" in text
    assert "verdict: DIFFER" in text


def test_altered_mark_differs_in_a_field(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    real = make_snapshot(tmp_path / "real", RULES)
    altered = make_snapshot(tmp_path / "altered", RULES.replace("0x4/0xffffffff", "0x5/0xffffffff"))
    v = verify_snapshot(real, FWD, predict_from=altered)
    first = v.first_difference()
    assert v.verdict == "differ" and first is not None
    assert (first["index"], first["fields"]) == (1, ["mark"])  # the line after the MARK rule
    assert (first["pktpath"]["mark"], first["kernel"]["mark"]) == (5, 4)


def test_cli_json_and_exit_status(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", RULES)
    result = CliRunner().invoke(group(), ["verify", str(snap), *FWD, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == "agree" and doc["first_difference"] is None
    assert doc["kernel"]["result"]["disposition"] == "forwarded"
    assert [e["id"] for e in doc["pktpath"]["trace"]] == [e["id"] for e in doc["kernel"]["trace"]]
    text = CliRunner().invoke(group(), ["verify", str(snap), *FWD])
    assert text.exit_code == 0 and "verdict: AGREE" in text.output


def test_tarball_and_own_trace_rule(kernel_sandbox: Run, make_snapshot: Make,
                                    pack_snapshot: Callable[[Path, Path], Path], tmp_path: Path) -> None:
    """A snapshot recorded with -j TRACE first (as kernel cases are), packed as .tar.gz."""
    traced = RULES.replace("-A PREROUTING -p tcp -j MARK", "-A PREROUTING -j TRACE\n-A OUTPUT -j TRACE\n"
                           "-A PREROUTING -p tcp -j MARK")
    tarball = pack_snapshot(make_snapshot(tmp_path / "s", traced), tmp_path / "s.tar.gz")
    v = verify_snapshot(tarball, FWD)
    assert v.verdict == "agree", render(v)
    assert v.kernel.trace[0]["id"] == "raw:PREROUTING:rule:2"


def test_nfacct_objects_are_created(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    kube = RULES.replace("-A web -p udp -j ACCEPT",
                         "-A web -p udp -m nfacct --nfacct-name pkv_udp_pkts -j ACCEPT")
    snap = make_snapshot(tmp_path / "s", kube)
    host_objects = subprocess.run(["nfacct", "list"], capture_output=True, text=True, check=False).stdout
    with pytest.raises(SandboxError, match="iptables-legacy-restore"), Sandbox(snap):
        pass  # without the object the ruleset does not load
    with VerifySandbox(snap, nfacct=["pkv_udp_pkts"]) as box:
        run = box.send(["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "udp"])
    assert "filter:web:rule:2" in [e["id"] for e in run.trace]
    v = verify_snapshot(snap, ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "udp"])
    assert v.verdict == "agree", render(v)
    assert any("pkv_udp_pkts" in s for s in v.stand_ins)
    # the objects were made in the sandbox's namespace, never in the initial one
    assert subprocess.run(["nfacct", "list"], capture_output=True, text=True, check=False).stdout == host_objects


def test_unreproducible_send_is_inconclusive(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """A process cannot send from an address it does not own; the sandbox's raw socket can.
    verify says so instead of blaming pktpath."""
    v = verify_snapshot(make_snapshot(tmp_path / "s", RULES),
                        ["--local", "--src", "198.51.100.7", "--dst", "10.1.0.9", "--proto", "udp"])
    assert v.verdict == "inconclusive" and v.exit_status == 2
    assert "FLOWI_FLAG_ANYSRC" in v.unreproduced[0]
    assert "INCONCLUSIVE" in render(v)


def test_cleanup_after_a_failure_in_the_middle(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    before = baseline()

    def broken(*_: object) -> None:
        assert ours() != []  # the sandbox is up when the send fails
        raise RuntimeError("injected failure while sending")

    monkeypatch.setattr(sandbox_module, "send_wire", broken)
    with pytest.raises(RuntimeError, match="injected"):
        verify_snapshot(make_snapshot(tmp_path / "s", RULES), FWD)
    assert_clean(before)


def test_cleanup_after_ctrl_c(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    before = baseline()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_module, "send_wire", interrupted)
    result = CliRunner().invoke(group(), ["verify", str(make_snapshot(tmp_path / "s", RULES)), *FWD])
    assert result.exit_code == 130
    assert "interrupted" in result.output
    assert_clean(before)


def test_cleanup_when_the_kernel_refuses_the_snapshot(kernel_sandbox: Run, make_snapshot: Make,
                                                      tmp_path: Path) -> None:
    """The sandbox fails half-way (the ruleset does not load): an error, exit 2, nothing left."""
    before = baseline()
    good = make_snapshot(tmp_path / "good", RULES)
    refused = make_snapshot(tmp_path / "bad", RULES.replace("-j web\n", "-j web\n-A FORWARD -j no-such-chain\n"))
    with pytest.raises(VerifyError, match="sandbox"):
        verify_snapshot(refused, FWD, predict_from=good)
    assert_clean(before)
    result = CliRunner().invoke(group(), ["verify", str(refused), *FWD])
    assert result.exit_code == 2 and "pktpath:" in result.output
    assert_clean(before)
