"""pktpath collect on namespaces the test builds: the files are the commands' own output, the
shell script writes the same files, and nothing in the namespace (or the host) changes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pktpath.cli.collect_verify import add_commands
from pktpath.collect import collect, shell_script
from pktpath.io.snapshot import load_snapshot
from pktpath.sandbox import KernelRun
from pktpath.sandbox.netns import NetNS
from pktpath.verify.hostbuild import built
from pktpath.verify.scenario import Iface, Scenario

pytestmark = pytest.mark.kernel

RULES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -j CT --notrack
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080
-A POSTROUTING -o pkv-e2 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A FORWARD -m set --match-set pkv_set1 src -j web
-A web -p tcp -m multiport --dports 80,443 -m comment --comment "allow web" -j ACCEPT
COMMIT
"""
HOST = Scenario(
    seed=0, index=0,
    ifaces=[Iface("pkv-e1", "02:00:00:aa:01:00", "02:00:00:aa:01:01", ["10.0.0.1/24", "10.0.0.77/24"]),
            Iface("pkv-e2", "02:00:00:aa:02:00", "02:00:00:aa:02:01", ["10.1.0.1/24"])],
    lo_addrs=["10.255.0.1/32"],
    sysctl={"net.ipv4.ip_forward": "1", "net.ipv4.conf.pkv-e2.forwarding": "0"},
    routes=["default via 10.1.0.254 dev pkv-e2", "blackhole 192.0.2.0/24",
            "10.9.0.0/16 via 10.0.0.254 dev pkv-e1 table 100"],
    rules=["fwmark 0x4 lookup 100 pref 1000"],
    ipset="create pkv_set1 hash:ip family inet hashsize 1024 maxelem 65536\nadd pkv_set1 10.0.0.7\n",
    iptables=RULES,
    packet=["--iif", "pkv-e1", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--proto", "tcp", "--dport", "443"],
)
Run = Callable[..., KernelRun]


@pytest.fixture
def host_ns(kernel_sandbox: Run) -> Iterator[NetNS]:
    with built(HOST) as ns:
        yield ns


def sh(ns: str | None, *argv: str) -> bytes:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    return subprocess.run(full, capture_output=True, check=False, env={**os.environ, "LC_ALL": "C"}).stdout


def no_comments(data: bytes) -> bytes:
    """*-save dumps carry timestamps in their # lines."""
    return re.sub(rb"(?m)^#.*\n", b"", data)


def ns_state(ns: str | None) -> dict[str, bytes]:
    """Everything collect could conceivably change, as seen from the namespace."""
    state = {
        "iptables-legacy": no_comments(sh(ns, "iptables-legacy-save")),
        "iptables-nft": no_comments(sh(ns, "iptables-nft-save")),
        "nft": sh(ns, "nft", "list", "ruleset"),
        "links": sh(ns, "ip", "-j", "link", "show"),
        "addrs": sh(ns, "ip", "-j", "addr", "show"),
        "routes": sh(ns, "ip", "-j", "route", "show", "table", "all"),
        "rules": sh(ns, "ip", "-j", "rule", "show"),
        "sysctl": sh(ns, "sysctl", "net.ipv4.ip_forward", "net.ipv4.conf"),
    }
    if ns is not None:  # the initial namespace's sets and conntrack table belong to others
        state["ipset"] = sh(ns, "ipset", "save")
        state["conntrack"] = sh(ns, "conntrack", "-L")
        state["netfilter"] = re.sub(rb"(?m)^net\.netfilter\.nf_conntrack_count.*\n", b"",
                                    sh(ns, "sysctl", "net.netfilter"))
    return state


def test_files_are_the_commands_output_and_nothing_changes(host_ns: NetNS, tmp_path: Path) -> None:
    before, host_before = ns_state(host_ns.name), ns_state(None)
    report = collect(tmp_path / "snap", netns=host_ns.name)
    assert ns_state(host_ns.name) == before
    assert ns_state(None) == host_before
    snap = tmp_path / "snap"
    written = {f.file: f for f in report.written}
    for name in ("iptables-save.txt", "ipset-save.txt", "ip-addr.json", "ip-link.json", "ip-route.json",
                 "ip-rule.json", "sysctl.txt", "nft-ruleset.json", "conntrack.txt", "uname.txt"):
        assert name in written, name
    for f in report.written:
        argv = f.command.split()
        own = sh(None if f.file == "uname.txt" else host_ns.name, *argv)
        data = (snap / f.file).read_bytes()
        if f.file.endswith("-save.txt"):
            own, data = no_comments(own), no_comments(data)
        assert data == own, f.file
    assert written["iptables-save.txt"].command == "iptables-legacy-save"
    assert written["iptables-save.txt"].backend == "legacy"
    assert "iptables-save.txt iptables-save v" in (snap / "backends.txt").read_text()
    assert "(legacy)" in (snap / "backends.txt").read_text().splitlines()[0]
    manifest = json.loads((snap / "collect.json").read_text())
    assert manifest["kernel"] == os.uname().release and manifest["netns"] == host_ns.name
    assert b"-A web -p tcp -m multiport --dports 80,443" in (snap / "iptables-save.txt").read_bytes()
    assert b"add pkv_set1 10.0.0.7" in (snap / "ipset-save.txt").read_bytes()
    assert b"net.ipv4.conf.pkv-e2.forwarding = 0" in (snap / "sysctl.txt").read_bytes()
    # and pktpath reads it
    loaded = load_snapshot(snap)
    assert "web" in loaded.ruleset.tables["filter"].chains


def test_shell_script_writes_the_same_files(host_ns: NetNS, tmp_path: Path) -> None:
    report = collect(tmp_path / "snap", netns=host_ns.name)
    by_hand = tmp_path / "by-hand"
    proc = subprocess.run(["ip", "netns", "exec", host_ns.name, "sh", "-c", shell_script(str(by_hand))],
                          capture_output=True, text=True, check=False)
    assert by_hand.is_dir(), proc.stderr
    for f in report.written:
        ours, theirs = (tmp_path / "snap" / f.file).read_bytes(), (by_hand / f.file).read_bytes()
        if f.file.endswith("-save.txt"):
            ours, theirs = no_comments(ours), no_comments(theirs)
        assert ours == theirs, f.file
    assert (tmp_path / "snap" / "backends.txt").read_text() == (by_hand / "backends.txt").read_text()


def test_cli_tarball(host_ns: NetNS, tmp_path: Path) -> None:
    @click.group()
    def group() -> None:
        pass

    add_commands(group)
    result = CliRunner().invoke(group, ["collect", "--netns", host_ns.name, "--tar", str(tmp_path / "snap")])
    assert result.exit_code == 0, result.output
    assert "iptables-legacy-save" in result.output and "plain shell commands" in result.output
    tarball = tmp_path / "snap.tar.gz"
    with tarfile.open(tarball) as tar:
        assert "snap/iptables-save.txt" in tar.getnames()
    assert "pkv-e1" in {link.name for link in load_snapshot(tarball).net.links}


def test_cli_json_reports_missing_tools(host_ns: NetNS, tmp_path: Path) -> None:
    @click.group()
    def group() -> None:
        pass

    add_commands(group)
    result = CliRunner().invoke(group, ["collect", "--netns", host_ns.name, "--format", "json", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    statuses = {f["file"]: f["status"] for f in doc["files"]}
    assert statuses["iptables-save.txt"] == "ok"
    assert all(s in ("ok", "missing", "refused", "failed", "skipped") for s in statuses.values())
    assert doc["script"].startswith("#!/bin/sh")


def test_collect_of_the_host_itself_is_read_only(kernel_sandbox: Run, tmp_path: Path) -> None:
    before = ns_state(None)
    report = collect(tmp_path / "host")
    assert ns_state(None) == before
    assert report.usable and report.netns is None
    assert (tmp_path / "host" / "ip-addr.json").read_bytes() == sh(None, "ip", "-j", "addr", "show")
