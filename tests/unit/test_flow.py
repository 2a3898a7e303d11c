"""pktpath flow beyond the recorded sample: ICMP errors about a connection (RELATED), and
where the responder's packets arrive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pktpath.cli.main import cli

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "home-router")
CLIENT = ["--iif", "eth1", "--src", "192.168.1.50", "--dst", "93.184.216.34", "--proto", "udp", "--sport", "5000",
          "--dport", "53"]


def flow(*args: str) -> list[dict[str, Any]]:
    res = CliRunner().invoke(cli, ["flow", EXAMPLE, *args, "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    packets: list[dict[str, Any]] = json.loads(res.output)["packets"]
    return packets


def test_icmp_error_is_related_and_de_natted() -> None:
    first, error = flow(*CLIENT, "--then", "reply:icmp-3/3")
    assert first["result"]["packet"]["src"] == "203.0.113.2"  # masqueraded
    assert error["packet"]["dst"] == "203.0.113.2" and error["packet"]["proto"] == "icmp"
    assert any(e.get("state") == "RELATED" for e in error["events"])
    assert error["result"]["disposition"] == "forwarded" and error["result"]["packet"]["dst"] == "192.168.1.50"
    assert not any(e["id"].startswith("nat:") for e in error["trace"])  # no nat table for a related error
    assert error["conntrack"][0]["flags"] == ["UNREPLIED"]  # an error is no reply


def test_reply_iif_none_stops_the_exchange() -> None:
    packets = flow(*CLIENT, "--then", "reply", "--then", "original", "--reply-iif", "none")
    assert [p["result"]["disposition"] for p in packets] == ["forwarded", "not-received"]


def test_reply_is_addressed_to_what_the_peer_saw() -> None:
    first, reply = flow(*CLIENT, "--then", "reply")
    assert (reply["packet"]["src"], reply["packet"]["dst"]) == ("93.184.216.34", "203.0.113.2")
    assert reply["packet"]["iif"] == "eth0"
    assert reply["result"]["packet"]["dst"] == "192.168.1.50"
    assert "UNREPLIED" not in reply["conntrack"][0]["flags"]
