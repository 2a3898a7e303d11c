"""``-j TTL`` (net/netfilter/xt_HL.c, ttl_tg): set, decrement (floor 0) or increment
(ceiling 255) the TTL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class TtlTarget(Target):
    name: ClassVar[str] = "TTL"
    tables: ClassVar[frozenset[str] | None] = frozenset({"mangle"})
    mode: str  # set | dec | inc
    ttl: int

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        if self.mode == "set":
            skb.ttl = self.ttl
        elif self.mode == "inc":
            skb.ttl = min(skb.ttl + self.ttl, 255)
        else:
            skb.ttl = max(skb.ttl - self.ttl, 0)
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j TTL --ttl-{self.mode} {self.ttl}"


@register_target("TTL", {"--ttl-set": 1, "--ttl-dec": 1, "--ttl-inc": 1})
def parse_ttl_target(opts: Sequence[Opt], ctx: ParseCtx) -> TtlTarget:
    if len(opts) != 1:
        raise ctx.error("TTL: exactly one of --ttl-set, --ttl-dec or --ttl-inc is required")
    o = opts[0]
    mode = o.name[6:]
    lo = 0 if mode == "set" else 1
    return TtlTarget(mode, parse_int(o.args[0], ctx, o.name, lo, 255))
