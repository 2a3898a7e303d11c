"""verify's helpers that need no root: stand-ins, warnings, nfacct, TRACE stripping, the CLI surface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from pktpath.cli.collect_verify import add_commands
from pktpath.sandbox.kmsg import parse_trace_line
from pktpath.verify import core
from pktpath.verify.args import PacketArgs, parse_words
from pktpath.verify.sandbox_ext import (
    meaningful_note,
    nfacct_objects,
    send_limitations,
    split_warnings,
    stand_ins,
    strip_own_trace_rule,
)

KUBE = """*filter
:INPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
-A INPUT -m nfacct --nfacct-name "localhost_nps_accepted_pkts" -j ACCEPT
-A KUBE-FIREWALL -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
COMMIT
"""


def cli() -> click.Group:
    @click.group()
    def group() -> None:
        pass

    add_commands(group)
    return group


def test_packet_words_round_trip() -> None:
    a = PacketArgs(iif="eth0", src="10.0.0.7", dst="10.1.0.9", proto="udp", dport="53", mac_src="02:00:00:00:00:09")
    assert parse_words(a.words()) == a
    assert PacketArgs(local=True, dst="1.2.3.4").words() == ["--local", "--dst", "1.2.3.4"]


def test_nfacct_objects() -> None:
    assert nfacct_objects(KUBE) == ["ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"]
    assert nfacct_objects("*filter\nCOMMIT\n") == []


@pytest.mark.parametrize(("rules", "local", "strip"), [
    ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j TRACE\n-A OUTPUT -j TRACE\nCOMMIT\n",
     False, True),
    ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j TRACE\nCOMMIT\n", True, False),
    ("*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j TRACE\nCOMMIT\n", False, False),
    ("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", False, False),
], ids=["own-trace", "own-trace-prerouting-only", "conditional-trace", "no-raw"])
def test_strip_own_trace_rule(rules: str, local: bool, strip: bool) -> None:
    assert strip_own_trace_rule(rules, local) == strip


def test_split_warnings() -> None:
    relevant, harmless = split_warnings([
        "sysctl net.netfilter.nf_conntrack_count=12: Permission denied",
        "sysctl net.ipv4.conf.eth0.rp_filter=1: Permission denied",
        "route not reproduced: 10.9.0.0/16 via 10.0.0.254 dev eth0",
    ])
    assert harmless == ["sysctl net.netfilter.nf_conntrack_count=12: Permission denied"]
    assert len(relevant) == 2


def write(root: Path, name: str, data: Any) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(data if isinstance(data, str) else json.dumps(data))


def test_stand_ins(tmp_path: Path) -> None:
    write(tmp_path, "ip-link.json", [
        {"ifname": "lo", "flags": ["LOOPBACK"]},
        {"ifname": "br0", "linkinfo": {"info_kind": "bridge"}},
        {"ifname": "eth1", "master": "br0", "linkinfo": {"info_kind": "veth"}},
        {"ifname": "dummy0", "linkinfo": {"info_kind": "dummy"}},
    ])
    write(tmp_path, "conntrack.txt", "tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 ...\n")
    write(tmp_path, "backends.txt", "iptables-save.txt iptables-save v1.8.9 (nf_tables)\n")
    notes, decisive = stand_ins(tmp_path, "eth1", ["kube-x"])
    text = "\n".join(notes)
    for expect in ("dummy0 (dummy) stands in as a veth", "br0 (bridge)", "eth1 is a port of br0",
                   "conntrack.txt has 1 entries", "nf_tables backend", "created nfacct objects kube-x"):
        assert expect in text
    assert decisive and "eth1" in decisive[0]
    assert stand_ins(tmp_path, "dummy0", [])[1] == []


def test_send_limitations(tmp_path: Path) -> None:
    write(tmp_path, "ip-addr.json", [{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.1"}]}])
    write(tmp_path, "ip-route.json", [{"type": "local", "dst": "192.0.2.0/24", "dev": "lo", "table": "local"}])
    assert send_limitations(tmp_path, True, "10.0.0.1") == []
    assert send_limitations(tmp_path, True, "192.0.2.77") == []  # a local route makes it ours
    assert send_limitations(tmp_path, True, None) == []
    assert send_limitations(tmp_path, False, "198.51.100.1") == []
    assert "FLOWI_FLAG_ANYSRC" in send_limitations(tmp_path, True, "198.51.100.1")[0]


def test_meaningful_note(tmp_path: Path) -> None:
    write(tmp_path, "ip6tables-save.txt", "")
    write(tmp_path, "ebtables-save.txt", "*filter\n:INPUT ACCEPT\n-A INPUT -j ACCEPT\n")
    write(tmp_path, "nft-ruleset.json", {"nftables": [{"metainfo": {}}]})
    assert not meaningful_note(tmp_path, "IPv6 is not modelled yet: ip6tables-save.txt is not used")
    assert meaningful_note(tmp_path, "bridge netfilter (ebtables) is not modelled yet: ebtables-save.txt is not used")
    assert not meaningful_note(tmp_path, "nftables rulesets are not modelled yet: nft-ruleset.json is not used")
    assert meaningful_note(tmp_path, "something else entirely")


def test_verify_without_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(core, "sandbox_available", lambda: (False, "needs root (network namespaces, netfilter)"))
    result = CliRunner().invoke(cli(), ["verify", str(tmp_path), "--iif", "eth0", "--src", "10.0.0.7",
                                        "--dst", "10.1.0.9"])
    assert result.exit_code == 2
    assert "needs root" in result.output and "sudo" in result.output
    result = CliRunner().invoke(cli(), ["verify", "--random", "3", "--seed", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "needs root" in result.output


def test_verify_usage_errors() -> None:
    result = CliRunner().invoke(cli(), ["verify", "--iif", "eth0", "--dst", "10.1.0.9"])
    assert result.exit_code == 2 and "SNAPSHOT" in result.output
    result = CliRunner().invoke(cli(), ["verify", "--random", "2", "--dst", "10.1.0.9"])
    assert result.exit_code == 2 and "give neither" in result.output


def test_collect_commands_only() -> None:
    result = CliRunner().invoke(cli(), ["collect", "--commands-only", "--netns", "blue", "snap"])
    assert result.exit_code == 0
    assert result.output.startswith("#!/bin/sh") and "ip netns exec blue" in result.output


def test_trace_line_parser_is_shared() -> None:
    """verify compares kernel lines parsed by the sandbox; a sanity check of that contract."""
    line = parse_trace_line("TRACE: filter:INPUT:policy:3 IN=eth0 OUT= SRC=10.0.0.7 DST=10.0.0.1 LEN=40 ID=5")
    assert line is not None and line.id == "filter:INPUT:policy:3"


def test_repair_marks_reads_mark_after_a_quoted_icmp_payload() -> None:
    from pktpath.sandbox import KernelRun
    from pktpath.verify.sandbox_ext import repair_marks

    quoted = ("TRACE: filter:INPUT:policy:2 IN=eth0 OUT= SRC=10.0.0.7 DST=10.0.0.1 LEN=296 TOS=0x00 PREC=0x00 "
              "TTL=64 ID=7 PROTO=ICMP TYPE=3 CODE=3 [SRC=0.0.0.0 DST=0.0.0.0 LEN=0 TOS=0x00 PREC=0x00 TTL=0 ID=0 "
              "PROTO=0 ] MARK=0x10 ")
    incomplete = ("TRACE: raw:OUTPUT:policy:4 IN= OUT=lo SRC=10.0.0.1 DST=10.0.0.1 LEN=28 TTL=64 ID=8 PROTO=ICMP "
                  "TYPE=11 CODE=0 INCOMPLETE [8 bytes] UID=1000 GID=0 MARK=0x1 ")
    plain = "TRACE: filter:INPUT:rule:1 IN=eth0 OUT= SRC=10.0.0.7 DST=10.0.0.1 LEN=40 ID=9 PROTO=TCP MARK=0x4 "
    run = KernelRun([{"id": "a", "mark": 0, "log": quoted}, {"id": "b", "mark": 0, "log": incomplete},
                     {"id": "c", "mark": 4, "log": plain}],
                    {"disposition": "dropped", "oif": None, "packet": {"mark": 0}}, [], None)
    fixed, changed = repair_marks(run)
    assert changed
    assert [e["mark"] for e in fixed.trace] == [0x10, 0x1, 4]
    again, changed_again = repair_marks(fixed)
    assert not changed_again and again is fixed


@pytest.mark.parametrize(("uncertain", "kernel_sport", "agree"), [
    (["sport"], 24748, True),  # pktpath says the kernel draws it: tolerated in range
    (["sport"], 30000, False),  # outside the range pktpath names
    ([], 24748, False),  # pktpath claims a definite port
], ids=["declared-random", "out-of-range", "not-declared"])
def test_declared_random_port(uncertain: list[str], kernel_sport: int, agree: bool) -> None:
    from pktpath.verify.compare import compare_prediction
    from pktpath.verify.core import random_value_notes

    result: dict[str, Any] = {"disposition": "sent", "oif": "eth1", "uncertain": uncertain,
                              "packet": {"src": "10.1.0.1", "sport": 24736, "mark": 0}}
    kernel = {**result, "packet": {**result["packet"], "sport": kernel_sport}}
    line = {"id": "nat:POSTROUTING:rule:1", "iif": None, "oif": "eth1", "src": "10.1.0.1", "dst": "10.1.0.9",
            "proto": "udp", "sport": 24736, "dport": 53, "mark": 0}
    events = [{"kind": "nat", "message": "MASQUERADE to 10.1.0.1 (address of eth1); source port: the kernel picks "
                                         "one at random in 24736-24803; pktpath shows 24736"}]
    pred = {"trace": [line], "result": result, "events": events,
            "paths": [{"probability": 1.0, "choices": [], "trace": [line], "result": result, "events": events}]}
    c = compare_prediction(pred, [{**line, "sport": kernel_sport}], kernel, local=True, strip=False)
    assert c.agree == agree
    notes = random_value_notes(pred, c.chosen, kernel)
    if agree:
        assert c.chosen.random == ("sport",)
        assert "drew 24748 at random in 24736-24803" in notes[0]
    else:
        assert notes == [] and c.chosen.first == 0
