"""``-j CLASSIFY`` (net/netfilter/xt_CLASSIFY.c, classify_tg): sets skb->priority (the tc
class).  Traffic control is not simulated: a note records it, and the walk continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class ClassifyTarget(Target):
    name: ClassVar[str] = "CLASSIFY"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.OUTPUT, Hook.FORWARD, Hook.POSTROUTING})
    major: int
    minor: int

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"CLASSIFY: tc class {self.major:x}:{self.minor:x} (skb->priority; tc is not simulated)")
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j CLASSIFY --set-class {self.major:04x}:{self.minor:04x}"


@register_target("CLASSIFY", {"--set-class": 1})
def parse_classify(opts: Sequence[Opt], ctx: ParseCtx) -> ClassifyTarget:
    if not opts:
        raise ctx.error("CLASSIFY: option \"--set-class\" must be specified")
    major, sep, minor = opts[-1].args[0].partition(":")
    try:
        ma, mi = int(major, 16), int(minor, 16)
    except ValueError:
        raise ctx.error(f"CLASSIFY: bad class {opts[-1].args[0]!r}, expected MAJOR:MINOR in hex") from None
    if not sep or ma > 0xFFFF or mi > 0xFFFF:
        raise ctx.error(f"CLASSIFY: bad class {opts[-1].args[0]!r}, expected MAJOR:MINOR in hex")
    return ClassifyTarget(ma, mi)
