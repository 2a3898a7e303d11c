"""``-j TRACE`` (net/netfilter/xt_TRACE.c): sets skb->nf_trace, then continues.

pktpath always traces every rule a packet matches, so the target itself changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class TraceTarget(Target):
    name: ClassVar[str] = "TRACE"
    tables: ClassVar[frozenset[str] | None] = frozenset({"raw"})

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        return Verdict.CONTINUE

    def render(self) -> str:
        return "-j TRACE"


@register_target("TRACE", {})
def parse_trace(opts: Sequence[Opt], ctx: ParseCtx) -> TraceTarget:
    return TraceTarget()
