"""``-j CONNSECMARK`` (net/netfilter/xt_CONNSECMARK.c, connsecmark_tg): copies the security
mark between packet and connection.  LSM labels are not simulated: a note, and the walk
continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.ext.t_secmark import SECMARK_TABLES
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class ConnsecmarkTarget(Target):
    name: ClassVar[str] = "CONNSECMARK"
    tables: ClassVar[frozenset[str] | None] = SECMARK_TABLES
    needs_conntrack: ClassVar[bool] = True
    mode: str  # save | restore

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"CONNSECMARK: {self.mode} the security mark (LSM labels are not simulated)")
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j CONNSECMARK --{self.mode}"


@register_target("CONNSECMARK", {"--save": 0, "--restore": 0})
def parse_connsecmark(opts: Sequence[Opt], ctx: ParseCtx) -> ConnsecmarkTarget:
    if len(opts) != 1:
        raise ctx.error("CONNSECMARK: exactly one of --save or --restore is required")
    return ConnsecmarkTarget(opts[0].name[2:])
