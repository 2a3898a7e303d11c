"""The state bits -m state and -m conntrack test (xt_state.c, xt_conntrack.c)."""

from __future__ import annotations

from pktpath.engine.conntrack import IPS_DST_NAT, IPS_SRC_NAT
from pktpath.engine.skb import CtInfo, Skb
from pktpath.ext.registry import ParseCtx

STATE_NAMES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")  # libxt_conntrack print order


def parse_states(text: str, ctx: ParseCtx, allowed: tuple[str, ...]) -> frozenset[str]:
    out = set()
    for name in text.split(","):
        if name.upper() not in allowed:
            raise ctx.error(f"bad state {name!r}, expected a comma list of " + ",".join(allowed))
        out.add(name.upper())
    return frozenset(out)


def packet_state(skb: Skb) -> str:
    """XT_STATE_BIT(ctinfo) as a name: no conntrack yet (raw table) counts as INVALID."""
    if skb.ct is None:
        return "UNTRACKED" if skb.ctinfo == CtInfo.UNTRACKED else "INVALID"
    assert skb.ctinfo is not None
    return _CTINFO_STATE[int(skb.ctinfo) % 3]


_CTINFO_STATE = ("ESTABLISHED", "RELATED", "NEW")


def nat_states(skb: Skb) -> set[str]:
    out = set()
    if skb.ct is not None:
        if skb.ct.status & IPS_SRC_NAT:
            out.add("SNAT")
        if skb.ct.status & IPS_DST_NAT:
            out.add("DNAT")
    return out


def render_states(states: frozenset[str]) -> str:
    return ",".join(s for s in STATE_NAMES if s in states)
