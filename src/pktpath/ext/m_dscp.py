"""``-m dscp`` (net/netfilter/xt_dscp.c, dscp_mt): the six DSCP bits of the TOS byte."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult

# libxtables' dscp classes (extensions/dscp_helper.c).
DSCP_CLASSES = {
    "CS0": 0x00, "CS1": 0x08, "CS2": 0x10, "CS3": 0x18, "CS4": 0x20, "CS5": 0x28, "CS6": 0x30, "CS7": 0x38,
    "BE": 0x00, "AF11": 0x0A, "AF12": 0x0C, "AF13": 0x0E, "AF21": 0x12, "AF22": 0x14, "AF23": 0x16,
    "AF31": 0x1A, "AF32": 0x1C, "AF33": 0x1E, "AF41": 0x22, "AF42": 0x24, "AF43": 0x26, "EF": 0x2E,
}


def parse_dscp_opt(o: Opt, ctx: ParseCtx) -> int:
    """``--dscp N`` / ``--set-dscp N`` (0..63) or ``--dscp-class NAME``."""
    if o.name.endswith("-class"):
        value = DSCP_CLASSES.get(o.args[0].upper())
        if value is None:
            raise ctx.error(f"Invalid DSCP class value {o.args[0]!r}, expected " + ", ".join(DSCP_CLASSES))
        return value
    return parse_int(o.args[0], ctx, o.name, 0, 0x3F)


@dataclass(frozen=True, slots=True)
class DscpMatch(Match):
    name: ClassVar[str] = "dscp"
    dscp: int
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return ((skb.tos >> 2) == self.dscp) ^ self.invert

    def render(self) -> str:
        return f"-m dscp {'! ' if self.invert else ''}--dscp 0x{self.dscp:02x}"


@register_match("dscp", {"--dscp": 1, "--dscp-class": 1})
def parse_dscp(opts: Sequence[Opt], ctx: ParseCtx) -> DscpMatch:
    if len(opts) != 1:
        raise ctx.error("dscp: exactly one of --dscp or --dscp-class is required")
    return DscpMatch(parse_dscp_opt(opts[0], ctx), opts[0].invert)
