"""A kube-proxy style Service (a cascade of ``-m statistic --mode random`` rules): the
endpoints the real kernel picks over many new connections follow the probabilities pktpath
reports for its paths (a chi-square test, not exact counts)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from pktpath.engine.host import Host
from pktpath.engine.path import Engine
from pktpath.model.addr import ip_to_int
from pktpath.model.net import NetState
from pktpath.model.packet import Packet
from pktpath.parse.iptables_save import parse

sys.path.insert(0, str(Path(__file__).parent))

from match_oracle import (  # noqa: E402
    HOST_ADDR,
    PEER_ADDR,
    Probe,
    available,
    namespace_pair,
    parse_counters,
    send_from_peer,
)

ENDPOINTS = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"]
CONNECTIONS = 400
CHI2_CRITICAL_DF3_P001 = 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def service_ruleset() -> str:
    n = len(ENDPOINTS)
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":SVC - [0:0]"] + [f":SEP{i} - [0:0]" for i in range(n)]
    lines.append(f"-A PREROUTING -d {HOST_ADDR}/32 -p udp -m udp --dport 80 -j SVC")
    for i in range(n - 1):  # kube-proxy's cascade: 1/n, then 1/(n-1) of the rest, ...
        lines.append(f"-A SVC -m statistic --mode random --probability {1 / (n - i):.11f} -j SEP{i}")
    lines.append(f"-A SVC -j SEP{n - 1}")
    lines += [f"-A SEP{i} -p udp -j DNAT --to-destination {ep}:80" for i, ep in enumerate(ENDPOINTS)]
    return "\n".join([*lines, "COMMIT", ""])


def predicted() -> dict[str, float]:
    ruleset = parse(service_ruleset(), "svc.txt")
    engine = Engine(Host(ruleset, NetState(), conntrack_enabled=True))
    pkt = Packet(dst=ip_to_int(HOST_ADDR), src=ip_to_int(PEER_ADDR), iif="veth-b", proto=17, sport=40000, dport=80)
    shares: dict[str, float] = {}
    for outcome in engine.explore(pkt):
        assert outcome.probability is not None
        shares[str(outcome.result.packet["dst"])] = outcome.probability
    return shares


def test_pktpath_shares_are_equal_and_sum_to_one() -> None:
    shares = predicted()
    assert set(shares) == set(ENDPOINTS)
    assert all(abs(p - 1 / len(ENDPOINTS)) < 1e-6 for p in shares.values())


@pytest.mark.kernel
def test_kernel_distribution_matches(tmp_path: Path) -> None:
    why = available()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"kernel test cannot run in CI: {why}")
        pytest.skip(why)
    shares = predicted()
    with namespace_pair() as pair:
        pair.exec(pair.b, "iptables-legacy-restore", input=service_ruleset())
        for n in range(CONNECTIONS):  # each new source port is a new connection: the nat table runs
            send_from_peer(pair, Probe(proto="udp", sport=20000 + n, dport=80))
        time.sleep(0.2)
        counters = parse_counters(pair.exec(pair.b, "iptables-legacy-save", "-c").stdout)
    observed = [counters.get(f"nat:SEP{i}:1", 0) for i in range(len(ENDPOINTS))]
    assert sum(observed) == CONNECTIONS, observed
    expected = [CONNECTIONS * shares[ep] for ep in ENDPOINTS]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    assert chi2 < CHI2_CRITICAL_DF3_P001, f"observed {observed}, predicted shares {shares}, chi2 {chi2:.2f}"
