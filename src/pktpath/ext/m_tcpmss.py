"""``-m tcpmss`` (net/netfilter/xt_tcpmss.c, tcpmss_mt): the MSS option of a TCP header.

A packet description has no TCP options.  Only a SYN may carry MSS (RFC 9293 3.7.1), so a
segment without SYN is taken to have none, where the kernel returns ``invert``; for a SYN
the option's value is unknown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_SYN, Skb, XtParams
from pktpath.ext.m_tcp import check_proto
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class TcpmssMatch(Match):
    name: ClassVar[str] = "tcpmss"
    mss_min: int
    mss_max: int
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff:
            return Uncertain("tcpmss on a non-first fragment reads payload bytes as a TCP header")
        if not skb.tcp_flags & TCP_SYN:
            return self.invert  # no MSS option: "goto out; return info->invert"
        return Uncertain("tcpmss: the SYN's MSS option (if any) is not in the packet description")

    def render(self) -> str:
        rng = str(self.mss_min) if self.mss_min == self.mss_max else f"{self.mss_min}:{self.mss_max}"
        return f"-m tcpmss {'! ' if self.invert else ''}--mss {rng}"


@register_match("tcpmss", {"--mss": 1})
def parse_tcpmss(opts: Sequence[Opt], ctx: ParseCtx) -> TcpmssMatch:
    check_proto(ctx, IPPROTO_TCP, "tcp")
    if not opts:
        raise ctx.error("tcpmss: option \"--mss\" must be specified")
    o = opts[-1]
    lo, sep, hi = o.args[0].partition(":")
    first = parse_int(lo, ctx, "--mss", 0, 0xFFFF)
    last = parse_int(hi, ctx, "--mss", 0, 0xFFFF) if sep else first
    return TcpmssMatch(first, last, o.invert)
