"""``-j MARK``: ``skb->mark = (skb->mark & ~mask) ^ value`` (net/netfilter/xt_mark.c, mark_tg).

Every form iptables accepts reduces to that one xor-mask pair, as iptables-save shows:
--set-mark V[/M] is V/(M|V)... exactly as libxt_MARK computes it (mark_tg_parse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, parse_value_mask, register_target
from pktpath.model.xtables import Target, Verdict

FULL = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class MarkTarget(Target):
    name: ClassVar[str] = "MARK"
    value: int
    mask: int

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.mark = ((skb.mark & ~self.mask) ^ self.value) & FULL
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j MARK --set-xmark {self.value:#x}/{self.mask:#x}"


def xor_mask(o: Opt, ctx: ParseCtx) -> tuple[int, int]:
    """(value, mask) for one MARK option, as libxt_MARK's mark_tg_parse computes them."""
    if o.name == "--set-xmark":
        return parse_value_mask(o.args[0], ctx, o.name)
    if o.name == "--set-mark":
        v, m = parse_value_mask(o.args[0], ctx, o.name)
        return v, m | v
    v = parse_int(o.args[0], ctx, o.name)
    if o.name == "--and-mark":
        return 0, (~v) & FULL
    if o.name == "--or-mark":
        return v, v
    return v, 0  # --xor-mark


@register_target("MARK", {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1})
def parse_mark_target(opts: Sequence[Opt], ctx: ParseCtx) -> MarkTarget:
    if not opts:
        raise ctx.error("MARK needs one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark")
    if len(opts) > 1:
        raise ctx.error("MARK: only one of --set-xmark/--set-mark/--and-mark/--or-mark/--xor-mark may be given")
    return MarkTarget(*xor_mask(opts[0], ctx))
