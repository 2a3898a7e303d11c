"""``-j NOTRACK`` and ``-j CT`` (net/netfilter/xt_CT.c): raw-table control of connection tracking.

``--notrack`` marks the packet untracked before conntrack sees it; ``--zone`` puts its
connection in a zone; ``--helper`` and the event/timeout options change nothing this
simulator looks at (they are kept and shown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import CtInfo, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict

RAW_ONLY = frozenset({"raw"})


@dataclass(frozen=True, slots=True)
class CtTarget(Target):
    name: ClassVar[str] = "CT"
    tables: ClassVar[frozenset[str] | None] = RAW_ONLY
    notrack: bool = False
    zone: int | None = None
    zone_dir: str = ""
    helper: str | None = None
    others: tuple[str, ...] = ()
    alias: str = "CT"

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        if skb.ct is not None or skb.ctinfo is not None:
            return Verdict.CONTINUE  # already has a conntrack (or is untracked): xt_ct_target leaves it
        if self.notrack:
            skb.ctinfo = CtInfo.UNTRACKED
        else:
            skb.ct_zone = self.zone or 0
        return Verdict.CONTINUE

    def render(self) -> str:
        if self.alias == "NOTRACK":
            return "-j NOTRACK"
        out = "-j CT"
        if self.notrack:
            out += " --notrack"
        if self.helper:
            out += f" --helper {self.helper}"
        if self.zone is not None:
            out += f" --zone{self.zone_dir} {self.zone}"
        return out + "".join(" " + o for o in self.others)

    @property
    def needs_conntrack(self) -> bool:  # type: ignore[override]
        return not self.notrack


CT_OPTS = {"--notrack": 0, "--helper": 1, "--ctevents": 1, "--expevents": 1, "--zone-orig": 1,
           "--zone-reply": 1, "--zone": 1, "--timeout": 1}


@register_target("CT", CT_OPTS)
def parse_ct(opts: Sequence[Opt], ctx: ParseCtx) -> CtTarget:
    notrack, zone, zone_dir, helper, others = False, None, "", None, []
    for o in opts:
        if o.name == "--notrack":
            notrack = True
        elif o.name.startswith("--zone"):
            zone = parse_int(o.args[0], ctx, o.name, 0, 0xFFFF) if o.args[0] != "mark" else 0
            zone_dir = o.name[6:]
        elif o.name == "--helper":
            helper = o.args[0]
        else:
            others.append(f"{o.name} {o.args[0]}")
    return CtTarget(notrack, zone, zone_dir, helper, tuple(others))


@register_target("NOTRACK", {})
def parse_notrack(opts: Sequence[Opt], ctx: ParseCtx) -> CtTarget:
    return CtTarget(notrack=True, alias="NOTRACK")
