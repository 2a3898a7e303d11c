"""Whole exchanges (``pktpath flow``) cross-checked against the real kernel.

Each exchange is a small hand-built host (``make_snapshot``: eth0 10.0.0.1/24 towards the
client, eth1 10.1.0.1/24 towards the servers) and the ``pktpath flow`` arguments of one
exchange.  ``flow_harness.run_flow`` rebuilds the host in namespaces, runs a real client
socket in the peer behind ``--iif`` and real servers behind every other link (and in the
host itself), lets the real stacks answer, holds every endpoint packet until the previous
one is finished and ``conntrack -L`` of the host namespace was read, and records each
packet's TRACE lines, result and table like a recorded flow case's expected.json.  That is
judged against ``pktpath flow ... --format json`` exactly as
../shared/kernel-cases/check/compare_flows.py judges the recorded cases (packet count;
per packet its header, trace ids and fields, disposition, oif, result packet and the
conntrack table as a set; a table the kernel run could not observe is null and skipped).

Each exchange also states what the kernel must have done (``kernel``): a guard that the
harness really exercised the feature, independent of pktpath.  An exchange with a known
pktpath disagreement (``pktpath_bug``) must still pass that guard and must still disagree;
it is then reported as xfail with the differences, and fails once pktpath agrees (drop
the note then).

Skipped (failed with CI=true) without the kernel sandbox (``kernel_sandbox``); skipped
without ../shared/kernel-cases/check.  About 15 s for the file on 2 cores.

The snapshots start raw PREROUTING/OUTPUT with ``-j TRACE`` themselves, as the recorded
cases do, so the kernel's numbering is the snapshot's.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from flow_harness import run_flow  # noqa: E402

from pktpath.cli.main import cli  # noqa: E402

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
CHECK = Path(os.environ.get("PKTPATH_KERNEL_CASES", REPO.parent / "shared" / "kernel-cases")) / "check"

CLIENT, SERVER, VIP = "10.0.0.7", "10.1.0.9", "203.0.113.10"
RAW_TRACE = "-A PREROUTING -j TRACE\n-A OUTPUT -j TRACE\n"
NO_NAT = ""


def ruleset(raw: str = "", nat: str = NO_NAT, mangle: str = "", filt: str = "",
            policies: tuple[str, str, str] = ("ACCEPT", "ACCEPT", "ACCEPT")) -> str:
    """iptables-save text: TRACE first in raw, then the given rules (filter INPUT/FORWARD/OUTPUT policies)."""
    text = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + RAW_TRACE + raw + "COMMIT\n"
    if mangle:
        text += ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                 ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" + mangle + "COMMIT\n")
    if nat:
        text += ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                 ":POSTROUTING ACCEPT [0:0]\n" + nat + "COMMIT\n")
    i, f, o = policies
    return text + f"*filter\n:INPUT {i} [0:0]\n:FORWARD {f} [0:0]\n:OUTPUT {o} [0:0]\n" + filt + "COMMIT\n"


def _kroute(dst: str, dev: str, src: str) -> dict[str, Any]:
    return {"dst": dst, "dev": dev, "protocol": "kernel", "scope": "link", "prefsrc": src, "flags": []}


def _local(kind: str, dst: str, dev: str, src: str) -> dict[str, Any]:
    return {"type": kind, "dst": dst, "dev": dev, "table": "local", "protocol": "kernel",
            "scope": "host" if kind == "local" else "link", "prefsrc": src, "flags": []}


# What `ip -j route show table all` prints for the base host, to add policy routing to.
BASE_ROUTES: list[dict[str, Any]] = [
    _kroute("10.0.0.0/24", "eth0", "10.0.0.1"), _kroute("10.1.0.0/24", "eth1", "10.1.0.1"),
    _local("local", "10.0.0.1", "eth0", "10.0.0.1"), _local("broadcast", "10.0.0.255", "eth0", "10.0.0.1"),
    _local("local", "10.1.0.1", "eth1", "10.1.0.1"), _local("broadcast", "10.1.0.255", "eth1", "10.1.0.1"),
    _local("local", "127.0.0.0/8", "lo", "127.0.0.1"), _local("local", "127.0.0.1", "lo", "127.0.0.1"),
    _local("broadcast", "127.255.255.255", "lo", "127.0.0.1"),
]
DEFAULT_RULES: list[dict[str, Any]] = [{"priority": 0, "src": "all", "table": "local"},
                                       {"priority": 32766, "src": "all", "table": "main"},
                                       {"priority": 32767, "src": "all", "table": "default"}]


def tcp(src: str, dst: str, sport: int, dport: int, *then: str, iif: str = "eth0") -> list[str]:
    args = ["--iif", iif, "--src", src, "--dst", dst, "--proto", "tcp", "--sport", str(sport), "--dport", str(dport)]
    return args + [a for t in then for a in ("--then", t)]


Kernel = dict[str, Any]


def dispositions(k: Kernel) -> list[str]:
    return [p["result"]["disposition"] for p in k["packets"]]


def tables(k: Kernel) -> list[list[dict[str, Any]] | None]:
    return [p["conntrack"] for p in k["packets"]]


def trace_ids(k: Kernel, step: int) -> list[str]:
    return [e["id"] for e in k["packets"][step - 1]["trace"]]


@dataclass(frozen=True)
class Case:
    name: str
    iptables: str
    args: list[str]
    kernel: Callable[[Kernel], bool]  # what the kernel must have done (guards the harness)
    listen: bool = True
    routes: list[dict[str, Any]] | None = None
    rules: list[dict[str, Any]] | None = None
    sysctl: str = "net.ipv4.ip_forward = 1\n"
    extra_addrs: dict[str, list[str]] = field(default_factory=dict)
    pktpath_bug: str | None = None  # a known disagreement: xfail (after the kernel checks) until fixed


STATEFUL_FORWARD = "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
HANDSHAKE = ("reply:SYN,ACK", "reply:ACK")

EXCHANGES = [
    Case(
        "dnat-tcp-handshake",
        ruleset(nat=f"-A PREROUTING -d {VIP}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {SERVER}:8080\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -o eth1 -m conntrack --ctstate DNAT -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, VIP, 40001, 80, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded"] * 3 and k["packets"][0]["result"]["packet"]["dport"] == 8080
        and k["packets"][1]["result"]["packet"]["src"] == VIP
        and tables(k)[2][0]["state"] == "ESTABLISHED"),  # type: ignore[index]
    Case(
        "snat-udp-reply",
        ruleset(nat="-A POSTROUTING -o eth1 -p udp -j SNAT --to-source 10.1.0.100\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -o eth1 -p udp -m udp --dport 53 -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", SERVER, "--proto", "udp", "--sport", "40002", "--dport", "53",
         "--then", "reply", "--then", "reply"],
        lambda k: dispositions(k) == ["forwarded"] * 3
        and k["packets"][0]["result"]["packet"]["src"] == "10.1.0.100"
        and k["packets"][1]["packet"]["dst"] == "10.1.0.100"
        and k["packets"][1]["result"]["packet"]["dst"] == CLIENT),
    Case(
        "masquerade-icmp-echo",
        ruleset(nat="-A POSTROUTING -o eth1 -j MASQUERADE\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -p icmp -m icmp --icmp-type 8 -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", SERVER, "--proto", "icmp", "--icmp-type", "8/0",
         "--icmp-id", "4242", "--then", "reply"],
        lambda k: dispositions(k) == ["forwarded"] * 2
        and k["packets"][0]["result"]["packet"]["src"] == "10.1.0.1"
        and k["packets"][1]["packet"]["icmp_type"] == 0 and tables(k)[1][0]["flags"] == []),  # type: ignore[index]
    Case(
        "redirect-tcp-local-server",
        ruleset(nat="-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080\n",
                filt="-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                     "-A INPUT -i eth0 -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT -j ACCEPT\n"
                     "-A OUTPUT -p tcp -m tcp --sport 8080 -j ACCEPT\n",
                policies=("DROP", "DROP", "ACCEPT")),
        tcp(CLIENT, VIP, 40003, 80, *HANDSHAKE),
        lambda k: dispositions(k) == ["local", "sent", "local"] and tables(k)[0] is None
        and k["packets"][0]["result"]["packet"]["dst"] == "10.0.0.1"
        and k["packets"][1]["result"]["packet"]["src"] == VIP),
    Case(
        "connmark-restore-fwmark-rule",
        ruleset(mangle="-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n"
                       "-A PREROUTING -i eth0 -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xffffffff\n"
                       "-A PREROUTING -m mark --mark 0x1 -j CONNMARK --save-mark --nfmask 0xffffffff "
                       "--ctmask 0xffffffff\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp("198.51.100.7", SERVER, 40004, 22, *HANDSHAKE),
        # the SYN,ACK gets mark 1 from the connection and the fwmark rule sends it back by eth0;
        # without it, the main table's route would send it out eth1
        lambda k: dispositions(k) == ["forwarded"] * 3
        and [p["result"]["oif"] for p in k["packets"]] == ["eth1", "eth0", "eth1"]
        and k["packets"][1]["result"]["packet"]["mark"] == 1
        and all(t[0]["mark"] == 1 for t in tables(k) if t),
        routes=BASE_ROUTES + [
            {"dst": "198.51.100.0/24", "gateway": "10.1.0.254", "dev": "eth1", "flags": []},
            {"dst": "198.51.100.0/24", "gateway": "10.0.0.254", "dev": "eth0", "table": "100", "flags": []}],
        rules=[DEFAULT_RULES[0], {"priority": 100, "src": "all", "fwmark": "0x1", "table": "100"},
               *DEFAULT_RULES[1:]]),
    Case(
        "notrack-both-ways",
        ruleset(raw="-A PREROUTING -i eth0 -p tcp -m tcp --dport 22 -j NOTRACK\n"
                    "-A PREROUTING -i eth1 -p tcp -m tcp --sport 22 -j CT --notrack\n",
                filt="-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, SERVER, 40005, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded"] * 3 and tables(k) == [[], [], []]),
    Case(
        "invalid-lone-synack",  # the SYN is untracked, so the server's SYN,ACK meets no entry: INVALID
        ruleset(raw="-A PREROUTING -i eth0 -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j CT --notrack\n",
                filt="-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
                     "-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\n" + STATEFUL_FORWARD,
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, SERVER, 40006, 22, "reply:SYN,ACK"),
        lambda k: dispositions(k) == ["forwarded", "dropped"] and trace_ids(k, 2)[-1] == "filter:FORWARD:rule:1"
        and tables(k) == [[], []]),
    Case(
        "invalid-ack-tcp-loose-0",  # SYN and SYN,ACK untracked; the ACK cannot open an entry with loose=0
        ruleset(raw="-A PREROUTING -p tcp -m tcp --tcp-flags SYN SYN -j CT --notrack\n",
                filt="-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
                     "-A FORWARD -m conntrack --ctstate UNTRACKED,NEW,RELATED,ESTABLISHED -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, SERVER, 40007, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded", "forwarded", "dropped"]
        and trace_ids(k, 3)[-1] == "filter:FORWARD:rule:1" and tables(k) == [[], [], []],
        sysctl="net.ipv4.ip_forward = 1\nnet.netfilter.nf_conntrack_tcp_loose = 0\n"),
    Case(
        "ack-picked-up-tcp-loose-1",  # the same with loose=1: the ACK opens an ESTABLISHED entry mid-stream
        ruleset(raw="-A PREROUTING -p tcp -m tcp --tcp-flags SYN SYN -j CT --notrack\n",
                filt="-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
                     "-A FORWARD -m conntrack --ctstate UNTRACKED,NEW,RELATED,ESTABLISHED -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, SERVER, 40008, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded"] * 3 and tables(k)[2][0]["state"] == "ESTABLISHED",  # type: ignore[index]
        sysctl="net.ipv4.ip_forward = 1\nnet.netfilter.nf_conntrack_tcp_loose = 1\n"),
    Case(
        "rst-answers-syn-deletes-entry",  # nothing listens: the server's RST,ACK; the entry goes at once
        ruleset(filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -p tcp -m conntrack --ctstate NEW -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, SERVER, 40009, 3306, "reply:RST,ACK"),
        lambda k: dispositions(k) == ["forwarded"] * 2 and len(tables(k)[0] or []) == 1 and tables(k)[1] == [],
        listen=False),
    Case(
        "udp-local-service-table-between",  # the host's UDP answer comes from a socket: every table observable
        ruleset(filt="-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                     "-A INPUT -i eth0 -p udp -m udp --dport 53 -j ACCEPT\n",
                policies=("DROP", "ACCEPT", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", "10.0.0.1", "--proto", "udp", "--sport", "40010",
         "--dport", "53", "--then", "reply", "--then", "reply", "--then", "reply"],
        lambda k: dispositions(k) == ["local", "sent", "local", "sent"] and None not in tables(k)),
    Case(
        "icmp-echo-to-host",  # the host answers at once: no table after the request
        ruleset(filt="-A INPUT -p icmp -m conntrack --ctstate NEW -j ACCEPT\n", policies=("DROP", "DROP", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", "10.0.0.1", "--proto", "icmp", "--icmp-id", "777",
         "--then", "reply"],
        lambda k: dispositions(k) == ["local", "sent"] and tables(k)[0] is None),
    Case(
        "local-client-tcp-mark",  # the host connects: its ACK follows the SYN,ACK at once
        ruleset(nat="-A POSTROUTING -o eth1 -j MASQUERADE\n",
                filt="-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                     "-A OUTPUT -m mark --mark 0x10 -j ACCEPT\n",
                policies=("DROP", "DROP", "DROP")),
        ["--local", "--src", "10.1.0.1", "--dst", SERVER, "--proto", "tcp", "--sport", "40011", "--dport", "22",
         "--mark", "0x10", "--then", "reply:SYN,ACK", "--then", "reply:ACK"],
        lambda k: dispositions(k) == ["sent", "local", "sent"] and tables(k)[1] is None
        and k["packets"][0]["result"]["packet"]["mark"] == 16 and k["packets"][2]["trace"][0]["mark"] == 16,),
    Case(
        "dnat-udp-reply-lost",  # --reply-iif none: the server's answer never comes back
        ruleset(nat=f"-A PREROUTING -d {VIP}/32 -p udp -m udp --dport 123 -j DNAT --to-destination {SERVER}\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -m conntrack --ctstate DNAT -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", VIP, "--proto", "udp", "--sport", "40012", "--dport", "123",
         "--then", "reply", "--reply-iif", "none"],
        lambda k: dispositions(k) == ["forwarded", "not-received"]
        and tables(k)[1][0]["flags"] == ["UNREPLIED"]),  # type: ignore[index]
    Case(
        "dnat-udp-port-unreachable",  # nothing listens: the server's ICMP error is RELATED and un-DNATed
        ruleset(nat=f"-A PREROUTING -d {VIP}/32 -p udp -m udp --dport 123 -j DNAT --to-destination {SERVER}\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -m conntrack --ctstate DNAT -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", VIP, "--proto", "udp", "--sport", "40013", "--dport", "123",
         "--then", "reply:icmp-3/3"],
        lambda k: dispositions(k) == ["forwarded"] * 2 and k["packets"][1]["result"]["packet"]["src"] == VIP,
        listen=False),
    Case(
        "notrack-skips-nat",  # untracked packets never see the nat table: the DNAT rule does not apply
        ruleset(raw=f"-A PREROUTING -d {VIP}/32 -j CT --notrack\n-A PREROUTING -s {VIP}/32 -j CT --notrack\n",
                nat=f"-A PREROUTING -d {VIP}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {SERVER}:8080\n",
                filt="-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\n", policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, VIP, 40014, 80, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded"] * 3 and k["packets"][0]["result"]["packet"]["dst"] == VIP
        and tables(k) == [[], [], []],
        routes=BASE_ROUTES + [{"dst": "203.0.113.0/24", "gateway": "10.1.0.254", "dev": "eth1", "flags": []}]),
    Case(
        "ct-zone",  # every packet in conntrack zone 7
        ruleset(raw="-A PREROUTING -j CT --zone 7\n", filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, SERVER, 40015, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded"] * 3 and all(t[0]["zone"] == 7 for t in tables(k) if t)),
    Case(
        "hairpin-dnat-masquerade",  # client and server behind eth0: DNAT and SNAT on one entry
        ruleset(nat=f"-A PREROUTING -d {VIP}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.9:8080\n"
                    "-A POSTROUTING -o eth0 -m conntrack --ctstate DNAT -j MASQUERADE\n",
                filt=STATEFUL_FORWARD + "-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT\n",
                policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, VIP, 40016, 80, *HANDSHAKE),
        lambda k: dispositions(k) == ["forwarded"] * 3
        and [p["result"]["oif"] for p in k["packets"]] == ["eth0"] * 3
        and k["packets"][0]["result"]["packet"]["src"] == "10.0.0.1"),
    Case(
        "local-output-dnat",  # the host connects to a VIP that nat OUTPUT rewrites (rerouted after OUTPUT)
        ruleset(nat=f"-A OUTPUT -d {VIP}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {SERVER}:8080\n"),
        ["--local", "--src", "10.1.0.1", "--dst", VIP, "--proto", "tcp", "--sport", "40017", "--dport", "80",
         "--then", "reply:SYN,ACK", "--then", "reply:ACK"],
        lambda k: dispositions(k) == ["sent", "local", "sent"] and k["packets"][0]["result"]["packet"]["dport"] == 8080
        and k["packets"][1]["result"]["packet"]["src"] == VIP,
        routes=BASE_ROUTES + [{"dst": "default", "gateway": "10.1.0.254", "dev": "eth1", "flags": []}]),
    Case(
        "reject-tcp-reset",  # the exchange stops at the rejected SYN; no entry is confirmed
        ruleset(filt="-A FORWARD -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset\n"),
        tcp(CLIENT, SERVER, 40018, 23, "reply:SYN,ACK"),
        lambda k: dispositions(k) == ["rejected"] and tables(k) == [[]]),
    Case(
        "udp-original-then-reply",  # the client sends twice before the answer: still UNREPLIED after the second
        ruleset(filt=STATEFUL_FORWARD + "-A FORWARD -i eth0 -p udp -j ACCEPT\n", policies=("ACCEPT", "DROP", "ACCEPT")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", SERVER, "--proto", "udp", "--sport", "40019", "--dport", "514",
         "--then", "original", "--then", "reply"],
        lambda k: dispositions(k) == ["forwarded"] * 3 and tables(k)[1][0]["flags"] == ["UNREPLIED"]  # type: ignore[index]
        and tables(k)[2][0]["flags"] == []),  # type: ignore[index]
    Case(
        "local-closed-port-rst",  # the host's own RST answers at once; the entry is deleted
        ruleset(filt="-A INPUT -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT\n",
                policies=("DROP", "DROP", "ACCEPT")),
        tcp(CLIENT, "10.0.0.1", 40020, 2222, "reply:RST,ACK"),
        lambda k: dispositions(k) == ["local", "sent"] and tables(k) == [None, []],
        listen=False),
    Case(
        "connmark-local-service-reroute",  # a multi-homed server: mangle OUTPUT restores the mark, the host's
        # answers are rerouted by the fwmark rule back out eth0 (the main table's default is eth1)
        ruleset(mangle="-A PREROUTING -i eth0 -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x1/0xffffffff\n"
                       "-A OUTPUT -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n"),
        tcp("198.51.100.7", "10.0.0.1", 40021, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["local", "sent", "local"] and k["packets"][1]["result"]["oif"] == "eth0"
        and k["packets"][1]["result"]["packet"]["mark"] == 1 and tables(k)[2][0]["mark"] == 1,  # type: ignore[index]
        routes=BASE_ROUTES + [
            {"dst": "default", "gateway": "10.1.0.254", "dev": "eth1", "flags": []},
            {"dst": "default", "gateway": "10.0.0.254", "dev": "eth0", "table": "100", "flags": []}],
        rules=[DEFAULT_RULES[0], {"priority": 100, "src": "all", "fwmark": "0x1", "table": "100"},
               *DEFAULT_RULES[1:]]),
    Case(
        "notrack-host-answers-then-ack-invalid",  # the host's SYN,ACK is untracked: the entry stays SYN_SENT
        # and the client's ACK, an ACK in SYN_SENT in the original direction, is INVALID
        ruleset(raw="-A OUTPUT -p tcp -m tcp --sport 22 -j CT --notrack\n",
                filt="-A INPUT -m conntrack --ctstate INVALID -j DROP\n", policies=("ACCEPT", "DROP", "ACCEPT")),
        tcp(CLIENT, "10.0.0.1", 40022, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["local", "sent", "dropped"] and tables(k)[1][0]["state"] == "SYN_SENT",  # type: ignore[index]
    ),
    Case(
        "local-icmp-echo-masquerade",  # the host pings out through MASQUERADE; the reply is delivered
        ruleset(nat="-A POSTROUTING -o eth1 -j MASQUERADE\n",
                filt="-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n", policies=("DROP", "DROP", "ACCEPT")),
        ["--local", "--src", "10.1.0.1", "--dst", SERVER, "--proto", "icmp", "--icmp-id", "999", "--then", "reply"],
        lambda k: dispositions(k) == ["sent", "local"] and tables(k)[1][0]["flags"] == []),  # type: ignore[index]
    Case(
        "local-udp-kernel-chosen-src",  # --local without --src: the header shows the source the kernel chose
        ruleset(filt="-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n", policies=("DROP", "DROP", "ACCEPT")),
        ["--local", "--dst", SERVER, "--proto", "udp", "--sport", "40023", "--dport", "53", "--then", "reply"],
        lambda k: dispositions(k) == ["sent", "local"] and k["packets"][0]["packet"]["src"] == "10.1.0.1",),
    Case(
        "fwmark-reflect-echo-reply",  # net.ipv4.fwmark_reflect=1: the host's echo reply carries the request's mark
        ruleset(mangle="-A PREROUTING -i eth0 -j MARK --set-xmark 0x5/0xffffffff\n",
                filt="-A OUTPUT -m mark --mark 0x5 -j ACCEPT\n", policies=("ACCEPT", "DROP", "DROP")),
        ["--iif", "eth0", "--src", CLIENT, "--dst", "10.0.0.1", "--proto", "icmp", "--icmp-id", "555",
         "--then", "reply"],
        lambda k: dispositions(k) == ["local", "sent"] and k["packets"][1]["trace"][0]["mark"] == 5,
        sysctl="net.ipv4.ip_forward = 1\nnet.ipv4.fwmark_reflect = 1\n",),
    Case(
        "tcp-fwmark-accept",  # net.ipv4.tcp_fwmark_accept=1: the accepted connection takes the SYN's mark
        ruleset(mangle="-A PREROUTING -i eth0 -j MARK --set-xmark 0x5/0xffffffff\n",
                filt="-A OUTPUT -m mark --mark 0x5 -j ACCEPT\n", policies=("ACCEPT", "DROP", "DROP")),
        tcp(CLIENT, "10.0.0.1", 40024, 22, *HANDSHAKE),
        lambda k: dispositions(k) == ["local", "sent", "local"] and k["packets"][1]["trace"][0]["mark"] == 5,
        sysctl="net.ipv4.ip_forward = 1\nnet.ipv4.tcp_fwmark_accept = 1\n",),
]


@functools.cache
def load_compare_flows() -> types.ModuleType:
    path = CHECK / "compare_flows.py"
    if not path.exists():
        pytest.skip(f"{path} not found: the shared kernel-case checks are needed (set PKTPATH_KERNEL_CASES)")
    spec = importlib.util.spec_from_file_location("kernel_cases_compare_flows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts its own directory on sys.path for compare/iptsave
    return module


def summary(doc: dict[str, Any]) -> str:
    out = []
    for p in doc["packets"]:
        pk = p.get("packet") or {}
        out.append(f"  #{p['step']} {p.get('role')} {pk.get('src')}:{pk.get('sport')} -> {pk.get('dst')}:"
                   f"{pk.get('dport')} {pk.get('tcp_flags') or pk.get('icmp_type') or ''} iif={pk.get('iif')}: "
                   f"{' '.join(str(e.get('id')) for e in p.get('trace', []))} => {p['result'].get('disposition')} "
                   f"{p['result'].get('oif')} {json.dumps(p['result'].get('packet'))}\n"
                   f"     conntrack {json.dumps(p.get('conntrack'))}")
    return "\n".join(out)


@pytest.mark.parametrize("ex", EXCHANGES, ids=[e.name for e in EXCHANGES])
def test_flow_agrees_with_kernel(kernel_sandbox: Any, make_snapshot: Callable[..., Path], tmp_path: Path,
                                 ex: Case) -> None:
    check = load_compare_flows()
    snap = make_snapshot(tmp_path / ex.name, ex.iptables, routes=ex.routes, rules=ex.rules, sysctl=ex.sysctl,
                         extra_addrs=ex.extra_addrs)
    kernel = run_flow(snap, ex.args, listen=ex.listen)
    assert kernel["warnings"] == [], "the sandbox did not reproduce the snapshot faithfully"
    try:
        did = ex.kernel(kernel)
    except (LookupError, TypeError):  # e.g. no table where one was expected
        did = False
    assert did, "the kernel did not do what this exchange is about:\n" + summary(kernel)
    result = CliRunner().invoke(cli, ["flow", str(snap), *ex.args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    ours = json.loads(result.output)
    tables_ = check.iptsave.parse(ex.iptables)
    diffs = check.compare_exchange(kernel, ours, tables_, False)
    report = "\n".join([*diffs, "kernel:", summary(kernel), "pktpath:", summary(ours)])
    if ex.pktpath_bug:  # the harness did its part (above); only the known disagreement may remain
        assert diffs, f"XPASS: pktpath now agrees; drop pktpath_bug ({ex.pktpath_bug})"
        pytest.xfail(f"known pktpath disagreement: {ex.pktpath_bug}\n{report}")
    assert diffs == [], report


FLOW_CASES_DIR = CHECK.parent / "flow"
RECORDED = sorted(p for p in FLOW_CASES_DIR.glob("seed-*") if (p / "expected.json").exists()) \
    if FLOW_CASES_DIR.is_dir() else []


@pytest.mark.parametrize("case", RECORDED or [None], ids=[p.name for p in RECORDED] or ["no-cases"])
def test_harness_reproduces_recorded_flow(kernel_sandbox: Any, case: Path | None) -> None:
    """The harness itself, against the exchanges recorded on this kernel (kernel vs kernel).

    Judged like pktpath (compare_flows.compare_exchange), and the tables it could not
    observe must be the recorded ones.  The recorded servers listen unless the exchange
    is a reset.
    """
    if case is None:
        pytest.skip(f"recorded flow cases not found at {FLOW_CASES_DIR} (set PKTPATH_KERNEL_CASES)")
    check = load_compare_flows()
    args = json.loads((case / "flow.json").read_text())
    expected = json.loads((case / "expected.json").read_text())
    kernel = run_flow(case, args, listen=not any("RST" in a for a in args))
    assert kernel["warnings"] == []
    diffs = check.compare_exchange(expected, kernel, check.iptsave.parse((case / "iptables-save.txt").read_text()),
                                   False)
    assert diffs == [], "\n".join([*diffs, "recorded:", summary(expected), "harness:", summary(kernel)])
    assert [p["conntrack"] is None for p in kernel["packets"]] == [p["conntrack"] is None
                                                                   for p in expected["packets"]]
