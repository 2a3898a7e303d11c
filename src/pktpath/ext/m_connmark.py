"""``-m connmark --mark`` (net/netfilter/xt_connmark.c, connmark_mt): the connection's mark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, hexmask, parse_value_mask, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class ConnmarkMatch(Match):
    name: ClassVar[str] = "connmark"
    needs_conntrack: ClassVar[bool] = True
    mark: int
    mask: int = 0xFFFFFFFF
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if skb.ct is None:
            return False
        return ((skb.ct.mark & self.mask) == self.mark) ^ self.invert

    def render(self) -> str:
        return f"-m connmark {'! ' if self.invert else ''}--mark {hexmask(self.mark, self.mask)}"


@register_match("connmark", {"--mark": 1})
def parse_connmark(opts: Sequence[Opt], ctx: ParseCtx) -> ConnmarkMatch:
    if not opts:
        raise ctx.error("-m connmark needs --mark VALUE[/MASK]")
    o = opts[-1]
    v, m = parse_value_mask(o.args[0], ctx, "--mark")
    return ConnmarkMatch(v, m, o.invert)
