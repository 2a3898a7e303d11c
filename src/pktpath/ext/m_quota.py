"""``-m quota`` (net/netfilter/xt_quota.c, quota_mt): a byte budget consumed by the packets
that reach the rule.  The remaining budget is not in a snapshot; a packet longer than the
whole quota can never match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class QuotaMatch(Match):
    name: ClassVar[str] = "quota"
    quota: int
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if skb.length > self.quota:
            return self.invert  # "priv->quota >= skb->len" cannot hold: the budget only shrinks
        return Uncertain(f"quota {self.quota} bytes: whether enough of the budget is left depends on the "
                         "traffic counted before (not in the snapshot)")

    def render(self) -> str:
        return f"-m quota {'! ' if self.invert else ''}--quota {self.quota}"


@register_match("quota", {"--quota": 1})
def parse_quota(opts: Sequence[Opt], ctx: ParseCtx) -> QuotaMatch:
    if not opts:
        raise ctx.error("quota: option \"--quota\" must be specified")
    o = opts[-1]
    return QuotaMatch(parse_int(o.args[0], ctx, "--quota", 0, 2**64 - 1), o.invert)
