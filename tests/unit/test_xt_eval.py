"""ipt_do_table(): jump stack, goto, RETURN, policy and the TRACE labels, case by case.

The expected labels are what the kernel logs (each quirk is also checked against the real
kernel in tests/kernel)."""

from __future__ import annotations

import pytest

from pktpath.engine.host import Host
from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.engine.xt_eval import Row, compile_table, do_table
from pktpath.model.addr import ip_to_int
from pktpath.model.xtables import Uncertain, Verdict
from pktpath.parse.iptables_save import parse

HEAD = "*filter\n:INPUT {policy} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"

CASES = [
    ("policy-only", "ACCEPT", [], "ACCEPT", ["filter:INPUT:policy:1"]),
    ("drop-policy", "DROP", ["-A INPUT -p udp -j ACCEPT"], "DROP", ["filter:INPUT:policy:2"]),
    ("unconditional-accept-is-policy", "DROP", ["-A INPUT -p udp -j DROP", "-A INPUT -j ACCEPT"],
     "ACCEPT", ["filter:INPUT:policy:2"]),
    ("jump-and-fall-off", "ACCEPT",
     [":A - [0:0]", "-A INPUT -j A", "-A INPUT -p tcp -j DROP", "-A A -p udp -j ACCEPT"],
     "DROP", ["filter:INPUT:rule:1", "filter:A:return:2", "filter:INPUT:rule:2"]),
    ("unconditional-return-in-user-chain", "ACCEPT",
     [":A - [0:0]", "-A INPUT -j A", "-A A -j RETURN", "-A A -j DROP"],
     "ACCEPT", ["filter:INPUT:rule:1", "filter:A:return:1", "filter:INPUT:policy:2"]),
    ("unconditional-drop-in-user-chain", "ACCEPT", [":A - [0:0]", "-A INPUT -j A", "-A A -j DROP"],
     "DROP", ["filter:INPUT:rule:1", "filter:A:return:1"]),
    ("goto-returns-to-last-jump", "ACCEPT",
     [":A - [0:0]", ":SUB - [0:0]", "-A INPUT -j A", "-A INPUT -j DROP", "-A A -g SUB", "-A A -j ACCEPT",
      "-A SUB -p udp -j ACCEPT"],
     "DROP", ["filter:INPUT:rule:1", "filter:A:rule:1", "filter:SUB:return:2", "filter:INPUT:policy:2"]),
    ("goto-from-builtin-falls-to-policy", "DROP",
     [":SUB - [0:0]", "-A INPUT -g SUB", "-A INPUT -j ACCEPT", "-A SUB -p udp -j ACCEPT"],
     "DROP", ["filter:INPUT:rule:1", "filter:SUB:return:2", "filter:INPUT:policy:3"]),
    ("no-target-continues", "ACCEPT", ["-A INPUT -p tcp", "-A INPUT -p tcp -j DROP"],
     "DROP", ["filter:INPUT:rule:1", "filter:INPUT:rule:2"]),
    ("mark-then-match", "ACCEPT",
     ["-A INPUT -j MARK --set-xmark 0x4/0xffffffff", "-A INPUT -m mark --mark 0x4 -j DROP"],
     "DROP", ["filter:INPUT:rule:1", "filter:INPUT:rule:2"]),
    ("empty-user-chain", "ACCEPT", [":E - [0:0]", "-A INPUT -j E"],
     "ACCEPT", ["filter:INPUT:rule:1", "filter:E:return:1", "filter:INPUT:policy:2"]),
    ("negated-source", "ACCEPT", ["-A INPUT ! -s 10.0.0.0/8 -j DROP", "-A INPUT -s 10.0.0.0/8 -j ACCEPT"],
     "ACCEPT", ["filter:INPUT:rule:2"]),
    ("iface-wildcard", "ACCEPT", ["-A INPUT -i eth+ -j DROP"], "DROP", ["filter:INPUT:rule:1"]),
    ("iface-exact-no-prefix", "ACCEPT", ["-A INPUT -i eth -j DROP"], "ACCEPT", ["filter:INPUT:policy:2"]),
]


def run(policy: str, lines: list[str]) -> tuple[Verdict, list[str]]:
    decls = [x for x in lines if x.startswith(":")]
    rules = [x for x in lines if not x.startswith(":")]
    text = HEAD.format(policy=policy) + "".join(d + "\n" for d in decls) + "".join(r + "\n" for r in rules) + "COMMIT\n"
    rs = parse(text, "t.txt")
    img = compile_table(rs.tables["filter"])
    skb = Skb(src=ip_to_int("10.1.2.3"), dst=ip_to_int("10.0.0.1"), proto=6, sport=1234, dport=80, tcp_flags=2)
    par = XtParams(Hook.INPUT, "filter", "eth0", None, Host(rs))
    labels: list[str] = []

    def on_match(row: Row, _skb: Skb, _par: XtParams) -> None:
        labels.append(row.label)

    def decide(_label: str, _u: Uncertain) -> bool:
        raise AssertionError("no uncertain match expected")

    return do_table(img, "INPUT", skb, par, decide, on_match), labels


@pytest.mark.parametrize("policy,lines,verdict,labels", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_do_table(policy: str, lines: list[str], verdict: str, labels: list[str]) -> None:
    got_verdict, got_labels = run(policy, lines)
    assert (got_verdict.value, got_labels) == (verdict, labels)
