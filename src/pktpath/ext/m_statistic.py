"""``-m statistic`` (net/netfilter/xt_statistic.c, statistic_mt): a random draw
(``--mode random``) or every n-th packet (``--mode nth``).  Both are undecidable for one
packet, with a known probability; probability 1 (or 0) and ``--every 1`` are certain."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

FULL = 0x80000000


@dataclass(frozen=True, slots=True)
class StatisticMatch(Match):
    name: ClassVar[str] = "statistic"
    mode: str  # random | nth
    probability: int = 0  # lround(0x80000000 * p), as the kernel stores it
    every: int = 0  # as given (the kernel stores every - 1)
    packet: int = 0
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if self.mode == "random":
            if self.probability >= FULL:
                return not self.invert  # (random & 0x7FFFFFFF) < 0x80000000 always holds
            if self.probability == 0:
                return self.invert
            p = self.probability / FULL
            p = 1 - p if self.invert else p
            return Uncertain(f"statistic random: matches with probability {p:.11f}", p)
        if self.every == 1:
            return not self.invert
        p = 1 / self.every
        p = 1 - p if self.invert else p
        return Uncertain(f"statistic nth: every {self.every}th packet matches; this packet's place in the count "
                         "depends on the traffic before (not in the snapshot)", p)

    def render(self) -> str:
        inv = "! " if self.invert else ""
        if self.mode == "random":
            return f"-m statistic --mode random {inv}--probability {self.probability / FULL:.11f}"
        return f"-m statistic --mode nth {inv}--every {self.every} --packet {self.packet}"


@register_match("statistic", {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1})
def parse_statistic(opts: Sequence[Opt], ctx: ParseCtx) -> StatisticMatch:
    mode: str | None = None
    prob: int | None = None
    every: int | None = None
    packet: int | None = None
    invert = False
    for o in opts:
        a = o.args[0]
        if o.invert and o.name in ("--mode", "--packet"):
            raise ctx.error(f"statistic: option \"{o.name}\" cannot be inverted.")
        if o.name == "--mode":
            if a not in ("random", "nth"):
                raise ctx.error(f"statistic: bad mode {a!r}, expected random or nth")
            mode = a
        elif o.name == "--probability":
            try:
                p = float(a)
            except ValueError:
                raise ctx.error(f"statistic: bad --probability {a!r}") from None
            if not 0.0 <= p <= 1.0:
                raise ctx.error("statistic: --probability must be between 0 and 1")
            prob, invert = int(math.floor(FULL * p + 0.5)), o.invert
        elif o.name == "--every":
            every, invert = parse_int(a, ctx, "--every", 1, 0xFFFFFFFF), o.invert
        else:
            packet = parse_int(a, ctx, "--packet")
    if mode is None:
        raise ctx.error("statistic: option \"--mode\" must be specified")
    if mode == "random":
        if every is not None or packet is not None:
            raise ctx.error("statistic: --every and --packet go with --mode nth")
        if prob is None:
            raise ctx.error("statistic: --mode random needs --probability")
        return StatisticMatch("random", probability=prob, invert=invert)
    if prob is not None:
        raise ctx.error("statistic: --probability goes with --mode random")
    if every is None:
        raise ctx.error("statistic: --mode nth needs --every")
    if packet is None:
        raise ctx.error("statistic: option \"--every\" also requires \"--packet\".")
    if packet > every - 1:
        raise ctx.error("the --packet p must be 0 <= p <= n-1")
    return StatisticMatch("nth", every=every, packet=packet, invert=invert)
