"""``-m length`` (net/netfilter/xt_length.c, length_mt): the IP total length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class LengthMatch(Match):
    name: ClassVar[str] = "length"
    lo: int
    hi: int
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return (self.lo <= skb.length <= self.hi) ^ self.invert

    def render(self) -> str:
        rng = str(self.lo) if self.lo == self.hi else f"{self.lo}:{self.hi}"
        return f"-m length {'! ' if self.invert else ''}--length {rng}"


@register_match("length", {"--length": 1})
def parse_length(opts: Sequence[Opt], ctx: ParseCtx) -> LengthMatch:
    if not opts:
        raise ctx.error("-m length needs --length N[:M]")
    o = opts[-1]
    a, sep, b = o.args[0].partition(":")
    lo = parse_int(a, ctx, "--length", 0, 65535) if a else 0
    hi = (parse_int(b, ctx, "--length", 0, 65535) if b else 65535) if sep else lo
    if lo > hi:
        raise ctx.error("--length: range is reversed")
    return LengthMatch(lo, hi, o.invert)
