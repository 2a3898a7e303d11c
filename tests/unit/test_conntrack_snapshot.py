"""conntrack.txt: packets of a live connection are ESTABLISHED, skip the nat table and get
the stored NAT binding applied (K4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pktpath.cli.packet_args import build_packet
from pktpath.engine.simulate import simulate
from pktpath.errors import ParseError
from pktpath.io.snapshot import load_snapshot
from pktpath.parse.conntrack_list import parse

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "home-router"
DNAT_CONN = ("tcp      6 431999 ESTABLISHED src=198.51.100.7 dst=203.0.113.2 sport=40000 dport=8080 "
             "src=192.168.1.10 dst=198.51.100.7 sport=80 dport=40000 [ASSURED] mark=0 use=1\n")


@pytest.fixture()
def snapshot(tmp_path: Path) -> Path:
    dest = tmp_path / "snap"
    shutil.copytree(EXAMPLE, dest)
    footer = "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n"
    (dest / "conntrack.txt").write_text(DNAT_CONN + footer)
    return dest


def trace(snap_dir: Path, **kw: object) -> tuple[list[str], dict[str, object]]:
    snap = load_snapshot(snap_dir)
    args: dict[str, object] = dict(iif=None, local=False, src=None, dst="", proto="tcp", sport=None, dport=None,
                                   icmp_type=None, tcp_flags=None, mark=None, ttl=None, length=None, mac_src=None,
                                   uid=None)
    args.update(kw)
    out = simulate(snap, build_packet(snap.net, **args))[0]  # type: ignore[arg-type]
    return [e.id for e in out.trace], out.result.to_json()


def test_established_packet_uses_stored_binding(snapshot: Path) -> None:
    ids, result = trace(snapshot, iif="eth0", src="198.51.100.7", dst="203.0.113.2", sport="40000",
                        dport="8080", tcp_flags="ACK")
    assert not any(i.startswith("nat:") for i in ids)
    assert ids == ["filter:FORWARD:rule:1"]  # RELATED,ESTABLISHED accept
    assert result["disposition"] == "forwarded" and result["packet"]["dst"] == "192.168.1.10"  # type: ignore[index]


def test_reply_direction_is_de_natted(snapshot: Path) -> None:
    ids, result = trace(snapshot, iif="eth1", src="192.168.1.10", dst="198.51.100.7", sport="80", dport="40000",
                        tcp_flags="ACK")
    assert result["packet"]["src"] == "203.0.113.2" and result["packet"]["sport"] == 8080  # type: ignore[index]


def test_conntrack_list_errors_name_the_line() -> None:
    with pytest.raises(ParseError) as info:
        parse("tcp 6 10 ESTABLISHED src=1.2.3.4\n", "ct.txt")
    assert info.value.line == 1 and "two tuples" in str(info.value)
