"""``-m ah`` (net/ipv4/netfilter/ipt_ah.c, ah_mt): the AH SPI, undecidable like ESP's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.ext.m_esp import EspMatch, parse_spis
from pktpath.ext.m_tcp import check_proto
from pktpath.ext.registry import Opt, ParseCtx, register_match

IPPROTO_AH = 51


@dataclass(frozen=True, slots=True)
class AhMatch(EspMatch):
    name: ClassVar[str] = "ah"
    proto: ClassVar[int] = IPPROTO_AH


@register_match("ah", {"--ahspi": 1})
def parse_ah(opts: Sequence[Opt], ctx: ParseCtx) -> AhMatch:
    check_proto(ctx, IPPROTO_AH, "ah")
    spis, inv = parse_spis(opts, ctx, "ah")
    return AhMatch(spis, inv)
