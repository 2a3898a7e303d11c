"""``-j TOS`` (net/netfilter/xt_DSCP.c, tos_tg): ``tos = (tos & ~mask) ^ value``; every
form is saved as ``--set-tos VALUE/MASK``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_tos import parse_tos_value_mask
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class TosTarget(Target):
    name: ClassVar[str] = "TOS"
    tables: ClassVar[frozenset[str] | None] = frozenset({"mangle"})
    value: int
    mask: int

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.tos = ((skb.tos & ~self.mask) ^ self.value) & 0xFF
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j TOS --set-tos 0x{self.value:02x}/0x{self.mask:02x}"


@register_target("TOS", {"--set-tos": 1, "--and-tos": 1, "--or-tos": 1, "--xor-tos": 1})
def parse_tos_target(opts: Sequence[Opt], ctx: ParseCtx) -> TosTarget:
    if len(opts) != 1:
        raise ctx.error("TOS: exactly one of --set-tos, --and-tos, --or-tos or --xor-tos is required")
    o = opts[0]
    if o.name == "--set-tos":
        return TosTarget(*parse_tos_value_mask(o.args[0], ctx, o.name))
    v = parse_int(o.args[0], ctx, o.name, 0, 0xFF)
    if o.name == "--and-tos":
        return TosTarget(0, ~v & 0xFF)
    if o.name == "--or-tos":
        return TosTarget(v, v)
    return TosTarget(v, 0)
