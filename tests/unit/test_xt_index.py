"""The indexed walk (runs of exact dst/proto/dport rules) is a compiled form of the chain:
for every ruleset and packet it must give exactly what the plain row-by-row walk gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pktpath.engine import xt_eval
from pktpath.engine.host import Host
from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.engine.xt_eval import Row, compile_table, do_table
from pktpath.model.addr import ip_to_int
from pktpath.model.xtables import Uncertain, Verdict
from pktpath.parse.iptables_save import parse

ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.1.1"]
PORTS = [22, 80, 443]


@st.composite
def rule(draw: st.DrawFn, chains: list[str]) -> str:
    parts = []
    kind = draw(st.sampled_from(["keyed", "keyed", "keyed", "port-only", "other"]))
    proto = draw(st.sampled_from(["tcp", "udp"]))
    if kind in ("keyed", "port-only"):
        if kind == "keyed":
            parts.append(f"-d {draw(st.sampled_from(ADDRS))}/32")
        parts.append(f"-p {proto}")
        if kind == "port-only" or draw(st.booleans()):
            parts.append(f"-m {proto} --dport {draw(st.sampled_from(PORTS))}")
        if draw(st.booleans()):
            parts.append(f"-s {draw(st.sampled_from(ADDRS))}")
    else:
        parts.append(draw(st.sampled_from(["-p tcp", "-s 10.0.0.0/8", "-m mark --mark 0x1/0x1", ""])))
    target = draw(st.sampled_from(["-j MARK --set-xmark 0x1/0x1", "-j ACCEPT", "-j DROP", "-j RETURN", "", *(
        f"-j {c}" for c in chains), *(f"-g {c}" for c in chains)]))
    return " ".join(p for p in (*parts, target) if p)


@st.composite
def ruleset(draw: st.DrawFn) -> str:
    users = ["A", "B"]
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":A - [0:0]",
             ":B - [0:0]"]
    for chain, callees in (("INPUT", users), ("A", ["B"]), ("B", [])):
        for _ in range(draw(st.integers(0, 30))):
            lines.append(f"-A {chain} {draw(rule(callees))}")
    return "\n".join([*lines, "COMMIT", ""])


def walk(text: str, index: bool, dst: str, proto: int, dport: int) -> tuple[Verdict, list[str], int]:
    rs = parse(text, "h.txt")
    img = compile_table(rs.tables["filter"], index=index)
    skb = Skb(src=ip_to_int("10.0.0.9"), dst=ip_to_int(dst), proto=proto, sport=1234, dport=dport, tcp_flags=2)
    labels: list[str] = []

    def on_match(row: Row, _s: Skb, _p: XtParams) -> None:
        labels.append(row.label)

    def decide(_l: str, _u: Uncertain) -> bool:
        return True

    verdict = do_table(img, "INPUT", skb, XtParams(Hook.INPUT, "filter", "eth0", None, Host(rs)), decide, on_match)
    return verdict, labels, skb.mark


@settings(max_examples=300, deadline=None)
@given(ruleset(), st.sampled_from(ADDRS), st.sampled_from([6, 17]), st.sampled_from(PORTS))
def test_index_equals_linear_walk(text: str, dst: str, proto: int, dport: int) -> None:
    old = xt_eval.MIN_RUN
    xt_eval.MIN_RUN = 2  # index every run, however short, so the property covers them
    try:
        assert walk(text, True, dst, proto, dport) == walk(text, False, dst, proto, dport)
    finally:
        xt_eval.MIN_RUN = old


def test_runs_are_built_for_service_tables() -> None:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":SVC - [0:0]"]
    lines += [f"-A PREROUTING -d 10.96.0.{i}/32 -p tcp -m tcp --dport 80 -j SVC" for i in range(1, 50)]
    rs = parse("\n".join([*lines, "COMMIT", ""]), "k.txt")
    img = compile_table(rs.tables["nat"])
    assert img.run_at[0] is not None and img.run_at[0].end == 49
