"""``-m ttl`` (net/ipv4/netfilter/ipt_ttl.c, ttl_mt): --ttl-eq / --ttl-lt / --ttl-gt, ``! --ttl-eq``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class TtlMatch(Match):
    name: ClassVar[str] = "ttl"
    mode: str  # eq ne lt gt
    value: int

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        t = skb.ttl
        return {"eq": t == self.value, "ne": t != self.value, "lt": t < self.value, "gt": t > self.value}[self.mode]

    def render(self) -> str:
        if self.mode == "ne":
            return f"-m ttl ! --ttl-eq {self.value}"
        return f"-m ttl --ttl-{self.mode} {self.value}"


@register_match("ttl", {"--ttl-eq": 1, "--ttl-lt": 1, "--ttl-gt": 1})
def parse_ttl(opts: Sequence[Opt], ctx: ParseCtx) -> TtlMatch:
    if len(opts) != 1:
        raise ctx.error("ttl needs exactly one of --ttl-eq, --ttl-lt, --ttl-gt")
    o = opts[0]
    mode = o.name[6:]
    if o.invert and mode != "eq":
        raise ctx.error(f"ttl: '!' is only allowed with --ttl-eq, not {o.name}")
    return TtlMatch("ne" if o.invert else mode, parse_int(o.args[0], ctx, o.name, 0, 255))
