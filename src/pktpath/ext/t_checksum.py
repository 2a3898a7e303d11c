"""``-j CHECKSUM`` (net/netfilter/xt_CHECKSUM.c, checksum_tg): fills in a checksum left
partial (CHECKSUM_PARTIAL) for virtual devices; the packet description has no checksums,
so it changes nothing here and continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class ChecksumTarget(Target):
    name: ClassVar[str] = "CHECKSUM"
    tables: ClassVar[frozenset[str] | None] = frozenset({"mangle"})

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append("CHECKSUM: a partial checksum would be completed (checksums are not simulated)")
        return Verdict.CONTINUE

    def render(self) -> str:
        return "-j CHECKSUM --checksum-fill"


@register_target("CHECKSUM", {"--checksum-fill": 0})
def parse_checksum(opts: Sequence[Opt], ctx: ParseCtx) -> ChecksumTarget:
    if not opts:
        raise ctx.error("CHECKSUM: option \"--checksum-fill\" must be specified")
    return ChecksumTarget()
