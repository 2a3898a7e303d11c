"""``-m cpu`` (net/netfilter/xt_cpu.c, cpu_mt): the CPU processing the packet, which
depends on RSS/RPS steering at run time: undecidable from a snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class CpuMatch(Match):
    name: ClassVar[str] = "cpu"
    cpu: int
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain(f"cpu {self.cpu}: which CPU handles the packet is decided at run time (RSS/RPS)")

    def render(self) -> str:
        return f"-m cpu {'! ' if self.invert else ''}--cpu {self.cpu}"


@register_match("cpu", {"--cpu": 1})
def parse_cpu(opts: Sequence[Opt], ctx: ParseCtx) -> CpuMatch:
    if not opts:
        raise ctx.error("cpu: option \"--cpu\" must be specified")
    return CpuMatch(parse_int(opts[-1].args[0], ctx, "--cpu"), opts[-1].invert)
