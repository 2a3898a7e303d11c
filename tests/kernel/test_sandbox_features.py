"""Sandbox mechanics on small hand-built snapshots, checked against the real kernel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pktpath.sandbox import KernelRun, Sandbox

pytestmark = pytest.mark.kernel

FILTER_ONLY = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT
-A OUTPUT -m owner --uid-owner 1000 -j DROP
COMMIT
"""

RAW_WITHOUT_TRACE = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -j MARK --set-xmark 0x7/0xffffffff
-A OUTPUT -p udp -j MARK --set-xmark 0x9/0xffffffff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m mark --mark 0x5 -j ACCEPT
COMMIT
"""

FWD = ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "tcp", "--sport", "1234",
       "--dport", "80"]
Run = Callable[..., KernelRun]
Make = Callable[..., Path]


def ids(run: KernelRun) -> list[str]:
    return [str(e["id"]) for e in run.trace]


def test_forward_without_raw_table(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """No raw table in the snapshot: the sandbox's own raw table leaves no trace entry."""
    run = kernel_sandbox(make_snapshot(tmp_path / "s", FILTER_ONLY), FWD)
    assert ids(run) == ["filter:FORWARD:rule:1"]
    assert run.result["disposition"] == "forwarded"
    assert run.result["oif"] == "eth1"
    assert run.trace[0]["oif"] == "eth1" and run.trace[0]["iif"] == "eth0"
    assert run.trace[0]["rule"] == "-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT"
    assert run.evidence["warnings"] == []


def test_forward_policy_drop(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    run = kernel_sandbox(make_snapshot(tmp_path / "s", FILTER_ONLY), [*FWD[:-1], "81"])
    assert ids(run) == ["filter:FORWARD:policy:2"]
    assert run.result["disposition"] == "dropped"
    assert run.result["packet"]["dport"] == 81


def test_raw_rules_keep_snapshot_numbering(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """TRACE is inserted first in raw; entries are renumbered back to the snapshot's rules."""
    snap = make_snapshot(tmp_path / "s", RAW_WITHOUT_TRACE)
    run = kernel_sandbox(snap, ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.0.0.1", "--proto", "tcp"])
    assert ids(run) == ["raw:PREROUTING:rule:1", "raw:PREROUTING:policy:2", "filter:INPUT:policy:2"]
    assert run.trace[0]["rule"] == "-A PREROUTING -p tcp -j MARK --set-xmark 0x7/0xffffffff"
    assert [e["mark"] for e in run.trace] == [0, 7, 7]
    assert run.result["disposition"] == "local"
    assert run.result["packet"]["mark"] == 7


def test_loopback_reentry_hides_our_trace_rule(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """A local packet to a local address re-enters raw PREROUTING on lo: our TRACE rule
    is logged there by the kernel, and the sandbox drops that entry (not the snapshot's)."""
    snap = make_snapshot(tmp_path / "s", RAW_WITHOUT_TRACE)
    run = kernel_sandbox(snap, ["--local", "--src", "10.0.0.1", "--dst", "10.0.0.1", "--proto", "udp",
                                "--sport", "5000", "--dport", "5001"])
    assert ids(run) == ["raw:OUTPUT:rule:1", "raw:OUTPUT:policy:2", "filter:OUTPUT:policy:1",
                        "raw:PREROUTING:policy:2", "filter:INPUT:policy:2"]
    assert [e["iif"] for e in run.trace] == [None, None, None, "lo", "lo"]
    assert run.result["disposition"] == "local"
    assert run.result["packet"]["mark"] == 9


def test_iif_mark(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """--mark on an arriving packet is its skb mark from the first hook on."""
    snap = make_snapshot(tmp_path / "s", RAW_WITHOUT_TRACE)
    run = kernel_sandbox(snap, ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.0.0.1", "--proto", "udp",
                                "--mark", "5"])
    assert ids(run) == ["raw:PREROUTING:policy:2", "filter:INPUT:rule:1"]
    assert [e["mark"] for e in run.trace] == [5, 5]


NAT_ONLY = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -j CONNMARK --restore-mark
COMMIT
"""


def test_iif_mark_of_a_packet_no_table_logs(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """A FIN without a connection is INVALID: nat never sees it, no table logs it, and its
    mark (which veth scrubs on the way out) is the one it arrived with (random sweep seed 41
    #148 took it for 0)."""
    run = kernel_sandbox(make_snapshot(tmp_path / "s", NAT_ONLY), [*FWD, "--tcp-flags", "FIN,ACK", "--mark", "4096"])
    assert ids(run) == []
    assert run.result["disposition"] == "forwarded"
    assert run.result["packet"]["mark"] == 4096


@pytest.mark.parametrize(("uid", "disposition", "errno"), [(1000, "dropped", "EPERM"), (0, "sent", None)])
def test_local_uid(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path,
                   uid: int, disposition: str, errno: str | None) -> None:
    snap = make_snapshot(tmp_path / "s", FILTER_ONLY)
    run = kernel_sandbox(snap, ["--local", "--dst", "10.1.0.9", "--proto", "udp", "--uid", str(uid)])
    assert run.result["disposition"] == disposition
    assert run.errno == errno
    assert ids(run) == (["filter:OUTPUT:rule:1"] if uid else ["filter:OUTPUT:policy:2"])
    assert run.trace[0]["src"] == "10.1.0.1"  # chosen by the kernel's routing
    assert f"UID={uid} " in run.raw_log[0]


def test_local_unroutable(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    routes: list[dict[str, Any]] = [
        {"dst": "10.0.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "10.0.0.1",
         "flags": []},
        {"dst": "10.1.0.0/24", "dev": "eth1", "protocol": "kernel", "scope": "link", "prefsrc": "10.1.0.1",
         "flags": []},
        {"type": "prohibit", "dst": "192.0.2.0/24", "flags": []},
    ]
    snap = make_snapshot(tmp_path / "s", FILTER_ONLY, routes=routes)
    with Sandbox(snap) as sandbox:
        no_route = sandbox.send(["--local", "--src", "10.0.0.1", "--dst", "198.51.100.1", "--proto", "udp"])
        prohibit = sandbox.send(["--local", "--src", "10.0.0.1", "--dst", "192.0.2.1", "--proto", "udp"])
        assert sandbox.host.warnings == []
    assert (no_route.result["disposition"], no_route.errno, no_route.trace) == ("unroutable", "ENETUNREACH", [])
    assert (prohibit.result["disposition"], prohibit.errno) == ("unroutable", "EACCES")


def test_input_unroutable_without_forwarding(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", FILTER_ONLY, sysctl="net.ipv4.ip_forward = 0\n")
    run = kernel_sandbox(snap, FWD)
    assert ids(run) == []
    assert run.result["disposition"] == "unroutable"
    assert run.evidence["snmp_delta"].get("Ip.InAddrErrors") == 1


def test_tarball_snapshot(kernel_sandbox: Run, make_snapshot: Make,
                          pack_snapshot: Callable[[Path, Path], Path], tmp_path: Path) -> None:
    tarball = pack_snapshot(make_snapshot(tmp_path / "s", FILTER_ONLY), tmp_path / "s.tar.gz")
    run = kernel_sandbox(tarball, FWD)
    assert run.result["disposition"] == "forwarded"


def test_one_sandbox_many_packets(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """Packets sent through one Sandbox get distinct markers and share conntrack."""
    snap = make_snapshot(tmp_path / "s", FILTER_ONLY.replace(
        "-A FORWARD -i eth0", "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A FORWARD -i eth0"))
    reply = ["--iif", "eth1", "--src", "10.1.0.9", "--dst", "10.0.0.7", "--proto", "tcp", "--sport", "80",
             "--dport", "1234", "--tcp-flags", "SYN,ACK"]
    with Sandbox(snap) as sandbox:
        first = sandbox.send(FWD)
        second = sandbox.send(reply)
    assert first.evidence["ip_id"] != second.evidence["ip_id"]
    assert ids(first) == ["filter:FORWARD:rule:2"]
    assert ids(second) == ["filter:FORWARD:rule:1"]  # the SYN,ACK answers the tracked SYN
    assert second.result["disposition"] == "forwarded" and second.result["oif"] == "eth0"


DEFAULT_RULES: list[dict[str, Any]] = [{"priority": 0, "src": "all", "table": "local"},
                                       {"priority": 32766, "src": "all", "table": "main"},
                                       {"priority": 32767, "src": "all", "table": "default"}]


@pytest.mark.parametrize(("selector", "args", "refused"), [
    ({"ipproto": "udp"}, ["--proto", "udp"], True),
    ({"ipproto": "udp"}, ["--proto", "tcp"], False),
    ({"uid_start": 1000, "uid_end": 1000}, ["--uid", "1000"], True),
    ({"uid_start": 1000, "uid_end": 1000}, ["--uid", "0"], False),
    ({"fwmark": "0x4"}, ["--mark", "4"], True),
    ({"src": "10.0.0.1"}, ["--src", "10.0.0.1"], True),  # ip -j prints no srclen for /32
    ({"src": "10.0.0.1"}, ["--src", "10.1.0.1"], False),
])
def test_local_send_routing_selectors(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path,
                                      selector: dict[str, Any], args: list[str], refused: bool) -> None:
    """The local socket's protocol, owner uid, mark and source reach the ip rule lookup."""
    rules = [DEFAULT_RULES[0], {"priority": 100, "src": "all", **selector, "action": "prohibit"},
             *DEFAULT_RULES[1:]]
    snap = make_snapshot(tmp_path / "s", FILTER_ONLY.replace("-A OUTPUT -m owner --uid-owner 1000 -j DROP\n", ""),
                         rules=rules)
    run = kernel_sandbox(snap, ["--local", "--dst", "10.1.0.9", *args])
    assert run.evidence["warnings"] == []
    if refused:
        assert (run.result["disposition"], run.errno) == ("unroutable", "EACCES")
    else:
        assert (run.result["disposition"], run.result["oif"]) == ("sent", "eth1")


def test_interface_without_carrier(kernel_sandbox: Run, make_snapshot: Make, tmp_path: Path) -> None:
    """A NO-CARRIER interface in the snapshot: its peer end is down, and nothing breaks."""
    import json

    snap = make_snapshot(tmp_path / "s", FILTER_ONLY)
    for name in ("ip-addr.json", "ip-link.json"):
        links = json.loads((snap / name).read_text())
        for link in links:
            if link["ifname"] == "eth1":
                link["flags"], link["operstate"] = ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"], "DOWN"
        (snap / name).write_text(json.dumps(links))
    run = kernel_sandbox(snap, ["--iif", "eth0", "--src", "10.0.0.2", "--dst", "10.0.0.1", "--proto", "udp",
                                "--dport", "53", "--mac-src", "02:00:00:00:00:02"])
    assert run.result["disposition"] == "local"
