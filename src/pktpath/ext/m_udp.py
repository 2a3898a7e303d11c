"""``-m udp``: --sport/--dport (net/netfilter/xt_tcpudp.c, udp_mt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_UDP, Skb, XtParams
from pktpath.ext.m_tcp import check_proto, port_in
from pktpath.ext.ports import parse_range, render_range
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class UdpMatch(Match):
    name: ClassVar[str] = "udp"
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    inv_sport: bool = False
    inv_dport: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto != IPPROTO_UDP:
            return False
        return port_in(skb.sport, self.sport, self.inv_sport) and port_in(skb.dport, self.dport, self.inv_dport)

    def render(self) -> str:
        out = ["-m udp"]
        if self.sport:
            out.append(("! " if self.inv_sport else "") + "--sport " + render_range(self.sport))
        if self.dport:
            out.append(("! " if self.inv_dport else "") + "--dport " + render_range(self.dport))
        return " ".join(out)


@register_match("udp", {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1})
def parse_udp(opts: Sequence[Opt], ctx: ParseCtx) -> UdpMatch:
    check_proto(ctx, IPPROTO_UDP, "udp")
    kw: dict[str, object] = {}
    for o in opts:
        if o.name in ("--sport", "--source-port"):
            kw["sport"], kw["inv_sport"] = parse_range(o.args[0], ctx, "udp"), o.invert
        else:
            kw["dport"], kw["inv_dport"] = parse_range(o.args[0], ctx, "udp"), o.invert
    return UdpMatch(**kw)  # type: ignore[arg-type]
