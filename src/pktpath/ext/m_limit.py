"""``-m limit`` (net/netfilter/xt_limit.c, limit_mt): a token bucket shared by every packet
that reaches the rule.  How full it is depends on the traffic before this packet, which no
snapshot holds, so the match is undecidable (a fresh rule lets the first --limit-burst through)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

XT_LIMIT_SCALE = 10000
XT_LIMIT_BURST = 5
UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))
RATES = (("day", 86400), ("hour", 3600), ("min", 60), ("sec", 1))


def parse_rate(text: str, ctx: ParseCtx, what: str, scale: int) -> tuple[int, int]:
    """libxt_limit/libxt_hashlimit parse_rate(): ``N[/second|minute|hour|day]`` (any prefix)
    -> (scale * seconds / N, seconds)."""
    number, sep, unit = text.partition("/")
    mult = 1
    if sep:
        low = unit.lower()
        hits = [m for name, m in UNITS if low and name.startswith(low)]
        if not hits:
            raise ctx.error(f"{what}: bad rate {text!r}, expected N/sec, N/minute, N/hour or N/day")
        mult = hits[0]
    digits = ""
    for ch in number:  # atoll(): leading digits
        if not ch.isdigit():
            break
        digits += ch
    rate = int(digits or "0")
    if rate == 0:
        raise ctx.error(f"{what}: bad rate {text!r}")
    value = scale * mult // rate
    if value == 0:
        raise ctx.error(f'Rate too fast "{text}"')
    return value, mult


def render_rate(period: int, scale: int) -> tuple[str, int]:
    """print_rate(): the coarsest unit that shows the rate exactly; also the quantum in ms."""
    if period == 0:
        return "inf", 0
    rates = [(name, scale * secs) for name, secs in RATES]
    i = 1
    while i < len(rates):
        mult = rates[i][1]
        if period > mult or mult // period < mult % period:
            break
        i += 1
    name, mult = rates[i - 1]
    return f"{mult // period}/{name}", mult // scale * 1000


@dataclass(frozen=True, slots=True)
class LimitMatch(Match):
    name: ClassVar[str] = "limit"
    avg: int = XT_LIMIT_SCALE * 3600 // 3  # 3/hour
    burst: int = XT_LIMIT_BURST

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        rate, _ = render_rate(self.avg, XT_LIMIT_SCALE)
        return Uncertain(f"limit {rate} burst {self.burst}: whether the token bucket still has credit depends on "
                         "the packets that reached this rule before (not in the snapshot)")

    def render(self) -> str:
        rate, _ = render_rate(self.avg, XT_LIMIT_SCALE)
        out = f"-m limit --limit {rate}"
        if self.burst != XT_LIMIT_BURST:
            out += f" --limit-burst {self.burst}"
        return out


@register_match("limit", {"--limit": 1, "--limit-burst": 1})
def parse_limit(opts: Sequence[Opt], ctx: ParseCtx) -> LimitMatch:
    kw: dict[str, int] = {}
    for o in opts:
        if o.invert:
            raise ctx.error("limit does not support invert")
        if o.name == "--limit":
            kw["avg"] = parse_rate(o.args[0], ctx, "--limit", XT_LIMIT_SCALE)[0]
        else:
            kw["burst"] = parse_int(o.args[0], ctx, "--limit-burst", 0, 10000)
    return LimitMatch(**kw)
