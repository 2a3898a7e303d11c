"""The engine's route memo (routing.RouteMemo) answers exactly what route_input() and
route_output() answer, on the recorded route cases' namespaces (several with ip rules on
ipproto / sport / dport, where the ports must count) and random flows."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktpath.engine import routing
from pktpath.engine.routing import Flow, RouteMemo
from pktpath.io.snapshot import load_snapshot
from pktpath.model.net import NetState

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "kernel-cases" / "route"
SNAPSHOTS = sorted(p for p in CASES.glob("seed-*") if (p / "ip-addr.json").exists())[:12] if CASES.exists() else []


def _addresses(net: NetState) -> list[int]:
    own = [ifa.local for link in net.links for ifa in link.addrs]
    return own + [a ^ 1 for a in own] + [0x08080808, 0xC0A80001, 0x0A000001, 0xFFFFFFFF, 0xE0000001]


@pytest.mark.skipif(not SNAPSHOTS, reason="../shared/kernel-cases is absent")
@pytest.mark.parametrize("case", SNAPSHOTS, ids=[p.name for p in SNAPSHOTS])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_memo_answers_like_the_lookup(case: Path, data: st.DataObject) -> None:
    net = load_snapshot(case).net
    memo = RouteMemo(net)
    addrs = _addresses(net)
    ifaces = [link.name for link in net.links]
    for _ in range(6):
        dst, src = data.draw(st.sampled_from(addrs)), data.draw(st.sampled_from(addrs + [0]))
        mark, tos = data.draw(st.sampled_from([0, 1, 0x10, 0x2000])), data.draw(st.sampled_from([0, 0x10]))
        proto = data.draw(st.sampled_from([6, 17, 1, 47]))
        sport, dport = data.draw(st.integers(0, 65535)), data.draw(st.sampled_from([22, 53, 80, 443, 8080]))
        iif = data.draw(st.sampled_from(ifaces))
        uid = data.draw(st.sampled_from([0, 1000]))
        want_in = routing.route_input(net, Flow(dst=dst, src=src, iif=iif, mark=mark, tos=tos, proto=proto,
                                                sport=sport, dport=dport))
        assert memo.route_input(dst, src, iif, mark, tos, proto, sport, dport) == want_in
        want_out = routing.route_output(net, Flow(dst=dst, src=src, mark=mark, tos=tos, uid=uid, proto=proto,
                                                  sport=sport, dport=dport))
        assert memo.route_output(dst, src, mark, tos, uid, proto, sport, dport) == want_out
