"""``-m multiport`` (net/netfilter/xt_multiport.c, ports_match_v1): up to 15 ports or ranges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import PORT_PROTOS, Skb, XtParams
from pktpath.ext.ports import parse_range, render_range
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class MultiportMatch(Match):
    name: ClassVar[str] = "multiport"
    flags: str  # src, dst, any
    ports: tuple[tuple[int, int], ...]
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto not in PORT_PROTOS:
            return False
        assert skb.sport is not None and skb.dport is not None
        hit = False
        for lo, hi in self.ports:
            if self.flags in ("src", "any") and lo <= skb.sport <= hi:
                hit = True
            if self.flags in ("dst", "any") and lo <= skb.dport <= hi:
                hit = True
            if hit:
                break
        return hit ^ self.invert

    def render(self) -> str:
        opt = {"src": "--sports", "dst": "--dports", "any": "--ports"}[self.flags]
        return f"-m multiport {'! ' if self.invert else ''}{opt} " + ",".join(render_range(p) for p in self.ports)


OPTS = {"--source-ports": 1, "--sports": 1, "--destination-ports": 1, "--dports": 1, "--ports": 1}


@register_match("multiport", OPTS)
def parse_multiport(opts: Sequence[Opt], ctx: ParseCtx) -> MultiportMatch:
    if len(opts) != 1:
        raise ctx.error("multiport needs exactly one of --sports, --dports, --ports")
    if ctx.proto not in PORT_PROTOS or ctx.inv_proto:
        raise ctx.error("multiport needs -p tcp, udp, udplite, sctp or dccp")
    o = opts[0]
    flags = "src" if o.name in ("--source-ports", "--sports") else "dst" if o.name in (
        "--destination-ports", "--dports") else "any"
    ports = []
    count = 0
    for part in o.args[0].split(","):
        r = parse_range(part, ctx)
        count += 1 if r[0] == r[1] else 2
        ports.append(r)
    if count > 15:
        raise ctx.error("multiport: too many ports specified (at most 15, a range counts as two)")
    return MultiportMatch(flags, tuple(ports), o.invert)
