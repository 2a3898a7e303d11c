"""``-m esp`` (net/netfilter/xt_esp.c, esp_mt): the ESP SPI.  A packet description has no
SPI, so only the full range (which iptables does not even save) is decidable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_tcp import check_proto
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

IPPROTO_ESP = 50
FULL = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class EspMatch(Match):
    name: ClassVar[str] = "esp"
    proto: ClassVar[int] = IPPROTO_ESP
    spis: tuple[int, int] = FULL
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto != self.proto:
            return False
        if self.spis == FULL:
            return not self.invert
        return Uncertain(f"{self.name} SPI {self._range()}: the SPI is not in the packet description")

    def _range(self) -> str:
        lo, hi = self.spis
        return str(lo) if lo == hi else f"{lo}:{hi}"

    def render(self) -> str:
        out = f"-m {self.name}"
        if self.spis != FULL:
            out += f" {'! ' if self.invert else ''}--{self.name}spi {self._range()}"
        return out


def parse_spis(opts: Sequence[Opt], ctx: ParseCtx, name: str) -> tuple[tuple[int, int], bool]:
    if not opts:
        return FULL, False
    o = opts[-1]
    lo, sep, hi = o.args[0].partition(":")
    first = parse_int(lo, ctx, o.name) if lo else 0
    last = (parse_int(hi, ctx, o.name) if hi else 0xFFFFFFFF) if sep else first
    return (first, last), o.invert


@register_match("esp", {"--espspi": 1})
def parse_esp(opts: Sequence[Opt], ctx: ParseCtx) -> EspMatch:
    check_proto(ctx, IPPROTO_ESP, "esp")
    spis, inv = parse_spis(opts, ctx, "esp")
    return EspMatch(spis, inv)
