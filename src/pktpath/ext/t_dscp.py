"""``-j DSCP`` (net/netfilter/xt_DSCP.c, dscp_tg): sets the six DSCP bits, keeping ECN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_dscp import parse_dscp_opt
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class DscpTarget(Target):
    name: ClassVar[str] = "DSCP"
    tables: ClassVar[frozenset[str] | None] = frozenset({"mangle"})
    dscp: int

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.tos = (skb.tos & 0x03) | (self.dscp << 2)
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j DSCP --set-dscp 0x{self.dscp:02x}"


@register_target("DSCP", {"--set-dscp": 1, "--set-dscp-class": 1})
def parse_dscp_target(opts: Sequence[Opt], ctx: ParseCtx) -> DscpTarget:
    if len(opts) != 1:
        raise ctx.error("DSCP: exactly one of --set-dscp or --set-dscp-class is required")
    return DscpTarget(parse_dscp_opt(opts[0], ctx))
