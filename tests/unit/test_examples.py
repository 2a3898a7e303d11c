"""The documented questions of every example under examples/, as golden tests.

Each case is one command from an example's README.md (and docs/examples.md), run through the
CLI with ``--format json``. A case lists the fates pktpath must report, in order: one per entry
of ``paths`` for ``trace`` (probability, disposition, oif, the fields of ``result.packet`` that
matter, trace ids that must appear in this order), one per packet for ``flow``.

Source ports after ``MASQUERADE --random-fully`` are left out on purpose: the kernel picks them
at random (see tests/kernel/test_examples_kernel.py, which replays this table through the real
kernel).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class Fate:
    """One path of a trace (or one packet of a flow), as pktpath must report it."""

    disposition: str
    oif: str | None = None
    packet: Mapping[str, int | str] = field(default_factory=dict)
    hits: tuple[str, ...] = ()  # trace ids that must appear, in this order (not necessarily adjacent)
    probability: float | None = 1.0


@dataclass(frozen=True)
class Case:
    id: str
    example: str
    args: str
    fates: tuple[Fate, ...]
    command: str = "trace"

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.args)

    @property
    def snapshot(self) -> Path:
        return EXAMPLES / self.example


K8S, DK, DKF, FWD, RTR, HOME = ("k8s-calico-node", "docker-ufw", "docker-ufw-fixed", "firewalld-server",
                                "dual-uplink-router", "home-router")
FRONTEND, REDIS, INGRESS = "cali45e50a7b62e", "cali4620dac2f99", "cali56ad049ace1"
CART, MASQ, ACCEPTED = "calif5f91d536da", 0x4000, 0x10000
EXTERNAL = "--iif eth0 --src 192.0.2.50 --dst 10.10.0.11 --proto tcp"
DK_WAN = "--iif eth0 --src 198.51.100.77 --dst 203.0.113.20 --proto tcp"
FWD_WAN = "--iif eth0 --src 198.51.100.77 --dst 203.0.113.30 --proto tcp"
CALI_POLICY_ACCEPT = "filter:FORWARD:rule:6"  # "Policy explicitly accepted packet."
KUBE_NO_MASQ = "nat:KUBE-POSTROUTING:rule:1"  # -m mark ! --mark 0x4000/0x4000 -j RETURN
KUBE_MASQ = "nat:KUBE-POSTROUTING:rule:3"  # MASQUERADE --random-fully

CASES: list[Case] = [
    # ------------------------------------------------------------------ Kubernetes node
    Case("k8s-pod-to-clusterip", K8S,
         f"--iif {FRONTEND} --src 10.244.36.130 --dst 10.96.45.10 --proto tcp --dport 8080", (
        Fate("forwarded", "vxlan.calico", {"src": "10.244.36.130", "dst": "10.244.171.7", "sport": 40000,
                                           "dport": 8080, "mark": ACCEPTED},
             ("raw:cali-PREROUTING:rule:4", "nat:KUBE-SERVICES:rule:4", "nat:KUBE-SVC-I5LIAMPLWKMBJ54B:rule:2",
              "nat:KUBE-SEP-K5TIUNASKJZZUENF:rule:2", "filter:cali-fw-cali45e50a7b62e:rule:7",
              CALI_POLICY_ACCEPT, "nat:cali-nat-outgoing:return:2", KUBE_NO_MASQ), 0.5),
        Fate("forwarded", CART, {"src": "10.244.36.130", "dst": "10.244.36.131", "sport": 40000, "dport": 8080,
                                 "mark": ACCEPTED},
             ("nat:KUBE-SVC-I5LIAMPLWKMBJ54B:rule:3", "nat:KUBE-SEP-M6JG6SE4UWBFEZEX:rule:2",
              "filter:cali-to-wl-dispatch:rule:2", "filter:cali-pi-_4yXkQvzOx7hGzYl4uX0:rule:1",
              "filter:cali-tw-calif5f91d536da:rule:6", CALI_POLICY_ACCEPT, KUBE_NO_MASQ), 0.5),
    )),
    Case("k8s-pod-to-pod-across-nodes", K8S,
         f"--iif {FRONTEND} --src 10.244.36.130 --dst 10.244.171.7 --proto tcp --dport 8080", (
             Fate("forwarded", "vxlan.calico", {"src": "10.244.36.130", "dst": "10.244.171.7", "sport": 40000,
                                                "dport": 8080, "mark": ACCEPTED},
                  ("nat:KUBE-SERVICES:return:10", "filter:cali-from-wl-dispatch:rule:1",
                   "filter:cali-pro-kns.shop:rule:1", CALI_POLICY_ACCEPT, "nat:cali-POSTROUTING:return:4",
                   KUBE_NO_MASQ)),
         )),
    Case("k8s-nodeport-cluster", K8S, f"{EXTERNAL} --dport 30080", (
        Fate("forwarded", "vxlan.calico", {"src": "10.244.36.128", "dst": "10.244.171.8", "dport": 8080, "mark": 0},
             ("nat:KUBE-SERVICES:rule:9", "nat:KUBE-NODEPORTS:rule:1", "nat:KUBE-EXT-PY4JZH2ITZYEO4CN:rule:1",
              "nat:KUBE-MARK-MASQ:rule:1", "nat:KUBE-SVC-PY4JZH2ITZYEO4CN:rule:2",
              "nat:KUBE-SEP-XCJ26LEBGOU53S5H:rule:2", "filter:KUBE-FORWARD:rule:2", KUBE_MASQ), 0.5),
        Fate("forwarded", FRONTEND, {"src": "10.10.0.11", "dst": "10.244.36.130", "dport": 8080, "mark": ACCEPTED},
             ("nat:KUBE-SVC-PY4JZH2ITZYEO4CN:rule:3", "nat:KUBE-SEP-TEQRDIV7V5OODSLU:rule:2",
              "filter:cali-to-wl-dispatch:rule:1", "filter:KUBE-FORWARD:rule:2", KUBE_MASQ), 0.5),
    )),
    Case("k8s-nodeport-local", K8S, f"{EXTERNAL} --dport 31443", (
        Fate("forwarded", INGRESS, {"src": "192.0.2.50", "dst": "10.244.36.133", "sport": 40000, "dport": 443,
                                    "mark": ACCEPTED},
             ("nat:KUBE-NODEPORTS:rule:2", "nat:KUBE-EXT-EDNDUDH2C75GIR6O:rule:4",
              "nat:KUBE-SVL-EDNDUDH2C75GIR6O:rule:1", "nat:KUBE-SEP-I53MX6RNQCCZBA22:rule:2",
              "filter:cali-tw-cali56ad049ace1:rule:5", CALI_POLICY_ACCEPT, KUBE_NO_MASQ)),
    )),
    Case("k8s-hairpin", K8S, f"--iif {REDIS} --src 10.244.36.132 --dst 10.96.120.33 --proto tcp --dport 6379", (
        Fate("forwarded", REDIS, {"src": "10.10.0.11", "dst": "10.244.36.132", "dport": 6379, "mark": ACCEPTED},
             ("nat:KUBE-SVC-J24A4QYSG6IQLY3E:rule:2", "nat:KUBE-SEP-FZBPMTBAN5YAQDTW:rule:1",
              "nat:KUBE-MARK-MASQ:rule:1", "nat:KUBE-SEP-FZBPMTBAN5YAQDTW:rule:2",
              "filter:cali-from-wl-dispatch:rule:3", "filter:cali-to-wl-dispatch:rule:3",
              "filter:KUBE-FORWARD:rule:2", KUBE_MASQ)),
    )),
    Case("k8s-nodeport-host-network", K8S, f"{EXTERNAL} --dport 30910", (
        Fate("local", None, {"src": "192.0.2.50", "dst": "10.10.0.11", "sport": 40000, "dport": 9100, "mark": MASQ},
             ("nat:KUBE-EXT-KY2MA5OSJ5L4TJFG:rule:1", "nat:KUBE-SVC-KY2MA5OSJ5L4TJFG:rule:2",
              "nat:KUBE-SEP-F2HEHPXWIYJAOHTC:rule:2", "filter:INPUT:rule:1", "filter:cali-INPUT:return:8",
              "filter:KUBE-FIREWALL:return:2", "filter:INPUT:policy:6"), 0.5),
        Fate("forwarded", "eth0", {"src": "10.10.0.11", "dst": "10.10.0.12", "dport": 9100, "mark": 0},
             ("nat:KUBE-SVC-KY2MA5OSJ5L4TJFG:rule:3", "nat:KUBE-SEP-YHKIGAP5NSN5LQJA:rule:2",
              "filter:KUBE-FORWARD:rule:2", KUBE_MASQ), 0.5),
    )),
    Case("k8s-node-dns-vxlan-masquerade", K8S, "--local --dst 10.96.0.10 --proto udp --dport 53", (
        Fate("sent", "vxlan.calico", {"src": "10.244.36.128", "dst": "10.244.171.2", "dport": 53, "mark": MASQ},
             ("nat:KUBE-SERVICES:rule:2", "nat:KUBE-SVC-TCOU7JCQXEZGVUNU:rule:1", "nat:KUBE-MARK-MASQ:rule:1",
              "nat:KUBE-SEP-V2U5UT6KYL7WJCYP:rule:2", "filter:OUTPUT:policy:5", "nat:cali-POSTROUTING:rule:3"),
             0.5),
        Fate("sent", "vxlan.calico", {"src": "10.244.36.128", "dst": "10.244.222.66", "dport": 53, "mark": MASQ},
             ("nat:KUBE-SVC-TCOU7JCQXEZGVUNU:rule:3", "nat:KUBE-SEP-IKNPA4MJQX4GRQ4I:rule:2",
              "nat:cali-POSTROUTING:rule:3"), 0.5),
    )),
    # ------------------------------------------------------------------ Docker + ufw
    Case("docker-published-port-bypasses-ufw", DK, f"{DK_WAN} --dport 5432", (
        Fate("forwarded", "docker0", {"src": "198.51.100.77", "dst": "172.17.0.2", "sport": 40000, "dport": 5432,
                                      "mark": 0},
             ("raw:PREROUTING:policy:3", "nat:PREROUTING:rule:1", "nat:DOCKER:rule:1", "filter:FORWARD:rule:1",
              "filter:DOCKER-USER:return:1", "filter:DOCKER-FORWARD:rule:3", "filter:DOCKER-BRIDGE:rule:1",
              "filter:DOCKER:rule:1", "nat:POSTROUTING:policy:2")),
    )),
    Case("docker-ssh-allowed-by-ufw", DK, f"{DK_WAN} --dport 22", (
        Fate("local", None, {"src": "198.51.100.77", "dst": "203.0.113.20", "dport": 22},
             ("nat:DOCKER:return:3", "filter:INPUT:rule:2", "filter:ufw-not-local:rule:1",
              "filter:ufw-before-input:rule:13", "filter:ufw-user-input:rule:1")),
    )),
    Case("docker-host-port-denied-by-ufw", DK, f"{DK_WAN} --dport 9100", (
        Fate("dropped", None, {"src": "198.51.100.77", "dst": "203.0.113.20", "dport": 9100},
             ("filter:ufw-before-input:rule:13", "filter:ufw-user-input:rule:4")),
    )),
    Case("docker-fixed-published-port-dropped", DKF, f"{DK_WAN} --dport 5432", (
        Fate("dropped", None, {"src": "198.51.100.77", "dst": "172.17.0.2", "dport": 5432},
             ("nat:DOCKER:rule:1", "filter:FORWARD:rule:1", "filter:DOCKER-USER:rule:2")),
    )),
    Case("docker-fixed-office-allowed", DKF,
         "--iif eth0 --src 198.51.100.10 --dst 203.0.113.20 --proto tcp --dport 5432", (
             Fate("forwarded", "docker0", {"src": "198.51.100.10", "dst": "172.17.0.2", "dport": 5432},
                  ("filter:DOCKER-USER:rule:1", "filter:FORWARD:rule:2", "filter:DOCKER:rule:1")),
         )),
    Case("docker-fixed-web-unaffected", DKF, f"{DK_WAN} --dport 8080", (
        Fate("forwarded", "docker0", {"src": "198.51.100.77", "dst": "172.17.0.3", "dport": 80},
             ("nat:DOCKER:rule:2", "filter:DOCKER-USER:return:3", "filter:DOCKER:rule:2")),
    )),
    Case("docker-fixed-container-outbound", DKF,
         "--iif docker0 --src 172.17.0.2 --dst 151.101.2.132 --proto tcp --dport 443", (
             Fate("forwarded", "eth0", {"src": "203.0.113.20", "dst": "151.101.2.132", "sport": 40000, "dport": 443},
                  ("filter:DOCKER-USER:return:3", "filter:DOCKER-BRIDGE:return:2", "filter:DOCKER-FORWARD:rule:4",
                   "nat:POSTROUTING:rule:1")),
         )),
    # ------------------------------------------------------------------ firewalld
    Case("firewalld-https-public", FWD, f"{FWD_WAN} --dport 443", (
        Fate("local", None, {"dst": "203.0.113.30", "dport": 443},
             ("raw:PREROUTING_ZONES:rule:3", "mangle:PREROUTING_ZONES:rule:3", "filter:INPUT:rule:4",
              "filter:INPUT_ZONES:rule:3", "filter:IN_public:rule:4", "filter:IN_public_allow:rule:3")),
    )),
    Case("firewalld-postgres-public-rejected", FWD, f"{FWD_WAN} --dport 5432", (
        Fate("rejected", None, {"dst": "203.0.113.30", "dport": 5432},
             ("filter:INPUT_ZONES:rule:3", "filter:IN_public_allow:return:4", "filter:IN_public:return:7",
              "filter:INPUT:rule:8")),
    )),
    Case("firewalld-postgres-internal", FWD, "--iif eth1 --src 10.20.1.15 --dst 10.20.0.10 --proto tcp --dport 5432", (
        Fate("local", None, {"dst": "10.20.0.10", "dport": 5432},
             ("raw:PREROUTING_ZONES:rule:2", "filter:INPUT_ZONES:rule:2", "filter:IN_internal_allow:rule:3")),
    )),
    Case("firewalld-trusted-source-zone", FWD,
         "--iif eth0 --src 192.0.2.5 --dst 203.0.113.30 --proto tcp --dport 5432", (
             Fate("local", None, {"src": "192.0.2.5", "dport": 5432},
                  ("raw:PREROUTING_ZONES:rule:1", "filter:INPUT_ZONES:rule:1", "filter:IN_trusted:return:6")),
         )),
    Case("firewalld-rich-rule-reject", FWD,
         "--iif eth0 --src 198.51.100.23 --dst 203.0.113.30 --proto tcp --dport 22", (
             Fate("rejected", None, {"src": "198.51.100.23", "dport": 22},
                  ("filter:IN_public:rule:3", "filter:IN_public_deny:rule:1")),
         )),
    Case("firewalld-forward-port", FWD, f"{FWD_WAN} --dport 8443", (
        Fate("local", None, {"dst": "203.0.113.30", "dport": 443},
             ("nat:PREROUTING_ZONES:rule:3", "nat:PRE_public:rule:4", "nat:PRE_public_allow:rule:1",
              "filter:INPUT:rule:1")),
    )),
    # ------------------------------------------------------------------ dual-uplink router
    Case("router-lan-default-uplink", RTR,
         "--iif lan0 --src 192.168.10.31 --dst 93.184.215.14 --proto tcp --dport 443", (
        Fate("forwarded", "wan1", {"src": "198.51.100.2", "dst": "93.184.215.14", "sport": 40000, "mark": 0},
             ("mangle:uplink-select:rule:5", "filter:FORWARD:rule:3", "nat:POSTROUTING:rule:1")),
    )),
    Case("router-work-laptop-uplink-b", RTR,
         "--iif lan0 --src 192.168.10.50 --dst 93.184.215.14 --proto tcp --dport 443", (
             Fate("forwarded", "wan2", {"src": "203.0.113.66", "dst": "93.184.215.14", "sport": 40000, "mark": 2},
                  ("mangle:uplink-select:rule:3", "mangle:uplink-select:rule:5", "filter:FORWARD:rule:3",
                   "nat:POSTROUTING:rule:2")),
         )),
    Case("router-port-forward-reply-via-uplink-b", RTR,
         "--iif wan2 --src 192.0.2.77 --dst 203.0.113.66 --proto tcp --dport 443 --then reply:SYN,ACK", (
             Fate("forwarded", "lan0", {"src": "192.0.2.77", "dst": "192.168.10.20", "dport": 443, "mark": 2},
                  ("mangle:uplink-select:rule:2", "mangle:uplink-select:rule:5", "nat:PREROUTING:rule:1",
                   "filter:FORWARD:rule:4", "nat:POSTROUTING:policy:3")),
             Fate("forwarded", "wan2", {"src": "203.0.113.66", "dst": "192.0.2.77", "sport": 443, "dport": 40000,
                                        "mark": 2},
                  ("mangle:PREROUTING:rule:1", "filter:FORWARD:rule:1")),
         ), command="flow"),
    Case("router-own-traffic-from-uplink-b-address", RTR,
         "--local --src 203.0.113.66 --dst 185.199.110.9 --proto udp --sport 51820 --dport 51820", (
             Fate("sent", "wan2", {"src": "203.0.113.66", "sport": 51820, "mark": 0}, ("nat:POSTROUTING:rule:2",)),
         )),
    Case("router-spoofed-lan-source-rp-filter", RTR,
         "--iif wan1 --src 192.168.10.99 --dst 192.168.10.20 --proto tcp --dport 445", (
             Fate("unroutable", None, {"src": "192.168.10.99", "dst": "192.168.10.20", "mark": 1},
                  ("mangle:uplink-select:rule:1", "nat:PREROUTING:policy:2")),
         )),
    # ------------------------------------------------------------------ home router (the first example)
    Case("home-port-forward", HOME, "--iif eth0 --src 198.51.100.7 --dst 203.0.113.2 --proto tcp --dport 8080", (
        Fate("forwarded", "eth1", {"src": "198.51.100.7", "dst": "192.168.1.10", "dport": 80},
             ("nat:PREROUTING:rule:1", "filter:FORWARD:rule:3", "nat:POSTROUTING:policy:2")),
    )),
    Case("home-wan-ssh-rejected", HOME, "--iif eth0 --src 198.51.100.7 --dst 203.0.113.2 --proto tcp --dport 22", (
        Fate("rejected", None, {"dst": "203.0.113.2", "dport": 22},
             ("filter:INPUT:rule:5", "filter:wan-in:rule:1", "filter:wan-in:rule:2")),
    )),
    Case("home-lan-browsing", HOME, "--iif eth1 --src 192.168.1.50 --dst 93.184.216.34 --proto tcp --dport 443", (
        Fate("forwarded", "eth0", {"src": "203.0.113.2", "dst": "93.184.216.34", "dport": 443},
             ("filter:FORWARD:rule:2", "nat:POSTROUTING:rule:1")),
    )),
]


def run_cli(case: Case) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [case.command, str(case.snapshot), *case.argv, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


def fates_of(case: Case, out: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """pktpath's answers in table order: the paths of a trace, the packets of a flow."""
    return list(out["packets"] if case.command == "flow" else out["paths"])


def is_subsequence(wanted: tuple[str, ...], ids: list[str]) -> bool:
    it = iter(ids)
    return all(any(i == w for i in it) for w in wanted)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_documented_question(case: Case) -> None:
    got = fates_of(case, run_cli(case))
    assert len(got) == len(case.fates), [g["result"] for g in got]
    for want, path in zip(case.fates, got, strict=True):
        result, ids = path["result"], [e["id"] for e in path["trace"]]
        assert result["disposition"] == want.disposition, result
        assert result.get("oif") == want.oif, result
        assert {k: result["packet"][k] for k in want.packet} == dict(want.packet), result
        assert is_subsequence(want.hits, ids), ids
        if case.command == "trace":
            assert path["probability"] == want.probability


COMMAND = re.compile(r"pktpath (trace|flow) examples/(\S+) (.*)$")


def documented(text: str) -> set[tuple[str, str, str]]:
    return {(m[1], m[2], m[3].strip()) for line in text.splitlines() if (m := COMMAND.search(line.strip()))}


def test_every_documented_command_is_a_case() -> None:
    """The READMEs, docs/examples.md and this table list the same questions."""
    table = {(c.command, c.example, c.args) for c in CASES}
    readmes: set[tuple[str, str, str]] = set()
    for readme in sorted(EXAMPLES.glob("*/README.md")):
        found = documented(readme.read_text())
        assert found, f"{readme}: no pktpath commands"
        assert {ex for _, ex, _ in found} == {readme.parent.name}, readme
        readmes |= found
    assert readmes == table
    assert documented((ROOT / "docs" / "examples.md").read_text()) == table


@pytest.mark.parametrize("example", sorted({c.example for c in CASES}))
def test_example_is_a_complete_snapshot(example: str) -> None:
    """Every example carries the files of docs/snapshot.md a host dump produces."""
    names = {p.name for p in (EXAMPLES / example).iterdir()}
    assert {"iptables-save.txt", "ip-addr.json", "ip-link.json", "ip-route.json", "ip-rule.json",
            "sysctl.txt", "README.md"} <= names
    save = (EXAMPLES / example / "iptables-save.txt").read_text()
    assert "# Generated" not in save and "-j TRACE" not in save
