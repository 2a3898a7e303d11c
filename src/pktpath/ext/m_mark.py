"""``-m mark``: ``(skb->mark & mask) == mark`` (net/netfilter/xt_mark.c, mark_mt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, hexmask, parse_value_mask, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class MarkMatch(Match):
    name: ClassVar[str] = "mark"
    mark: int
    mask: int = 0xFFFFFFFF
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return ((skb.mark & self.mask) == self.mark) ^ self.invert

    def render(self) -> str:
        return f"-m mark {'! ' if self.invert else ''}--mark {hexmask(self.mark, self.mask)}"


@register_match("mark", {"--mark": 1})
def parse_mark(opts: Sequence[Opt], ctx: ParseCtx) -> MarkMatch:
    if not opts:
        raise ctx.error("-m mark needs --mark VALUE[/MASK]")
    o = opts[-1]
    value, mask = parse_value_mask(o.args[0], ctx, "--mark")
    return MarkMatch(value, mask, o.invert)
