"""``-j SECMARK`` (net/netfilter/xt_SECMARK.c, secmark_tg): sets the packet's security mark
from an LSM (SELinux) context.  LSM labels are not simulated: a note, and the walk continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict

SECMARK_TABLES = frozenset({"mangle", "security"})


@dataclass(frozen=True, slots=True)
class SecmarkTarget(Target):
    name: ClassVar[str] = "SECMARK"
    tables: ClassVar[frozenset[str] | None] = SECMARK_TABLES
    selctx: str

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"SECMARK: security context {self.selctx} (LSM labels are not simulated)")
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j SECMARK --selctx {self.selctx}"


@register_target("SECMARK", {"--selctx": 1})
def parse_secmark(opts: Sequence[Opt], ctx: ParseCtx) -> SecmarkTarget:
    if not opts:
        raise ctx.error("SECMARK: option \"--selctx\" must be specified")
    return SecmarkTarget(opts[-1].args[0])
