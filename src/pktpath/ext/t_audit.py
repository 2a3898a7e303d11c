"""``-j AUDIT`` (net/netfilter/xt_AUDIT.c, audit_tg): writes an audit record and continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict

TYPES = ("accept", "drop", "reject")


@dataclass(frozen=True, slots=True)
class AuditTarget(Target):
    name: ClassVar[str] = "AUDIT"
    kind: str

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"AUDIT: audit record of type {self.kind}")
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j AUDIT --type {self.kind}"


@register_target("AUDIT", {"--type": 1})
def parse_audit(opts: Sequence[Opt], ctx: ParseCtx) -> AuditTarget:
    if not opts:
        raise ctx.error("AUDIT: option \"--type\" must be specified")
    kind = opts[-1].args[0].lower()
    if kind not in TYPES:
        raise ctx.error(f"AUDIT: bad --type {opts[-1].args[0]!r}, expected accept, drop or reject")
    return AuditTarget(kind)
