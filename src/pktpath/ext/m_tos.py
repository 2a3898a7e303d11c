"""``-m tos`` (net/netfilter/xt_dscp.c, tos_mt): ``(iph->tos & mask) == value``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult

# libxtables tos_parse_symbolic(): a name stands for VALUE/0x3f.
TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08, "maximize-reliability": 0x04,
             "minimize-cost": 0x02, "normal-service": 0x00}


def parse_tos_value_mask(text: str, ctx: ParseCtx, what: str) -> tuple[int, int]:
    """``VALUE[/MASK]`` (mask defaults to 0xff) or a symbolic name (mask 0x3f)."""
    if text.lower() in TOS_NAMES:
        return TOS_NAMES[text.lower()], 0x3F
    value, sep, mask = text.partition("/")
    return parse_int(value, ctx, what, 0, 0xFF), parse_int(mask, ctx, what, 0, 0xFF) if sep else 0xFF


@dataclass(frozen=True, slots=True)
class TosMatch(Match):
    name: ClassVar[str] = "tos"
    value: int
    mask: int = 0xFF
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return ((skb.tos & self.mask) == self.value) ^ self.invert

    def render(self) -> str:
        return f"-m tos {'! ' if self.invert else ''}--tos 0x{self.value:02x}/0x{self.mask:02x}"


@register_match("tos", {"--tos": 1})
def parse_tos(opts: Sequence[Opt], ctx: ParseCtx) -> TosMatch:
    if not opts:
        raise ctx.error("tos: option \"--tos\" must be specified")
    o = opts[-1]
    value, mask = parse_tos_value_mask(o.args[0], ctx, "--tos")
    return TosMatch(value & mask, mask, o.invert)
