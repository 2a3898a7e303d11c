"""``-j CONNMARK`` (net/netfilter/xt_connmark.c, connmark_tg_shift): set, save or restore
the connection mark.  Without a connection (before conntrack ran, or untracked) it does nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, parse_value_mask, register_target
from pktpath.model.xtables import Target, Verdict

FULL = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ConnmarkTarget(Target):
    name: ClassVar[str] = "CONNMARK"
    needs_conntrack: ClassVar[bool] = True
    mode: str  # set / save / restore
    ctmark: int = 0
    ctmask: int = FULL
    nfmask: int = FULL

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        ct = skb.ct
        if ct is None:
            return Verdict.CONTINUE
        if self.mode == "set":
            ct.mark = ((ct.mark & ~self.ctmask) ^ self.ctmark) & FULL
        elif self.mode == "save":
            ct.mark = ((ct.mark & ~self.ctmask) ^ (skb.mark & self.nfmask)) & FULL
        else:
            skb.mark = ((skb.mark & ~self.nfmask) ^ (ct.mark & self.ctmask)) & FULL
        return Verdict.CONTINUE

    def render(self) -> str:
        if self.mode == "set":
            return f"-j CONNMARK --set-xmark {self.ctmark:#x}/{self.ctmask:#x}"
        return f"-j CONNMARK --{self.mode}-mark --nfmask {self.nfmask:#x} --ctmask {self.ctmask:#x}"


@register_target("CONNMARK", {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1,
                              "--xor-mark": 1, "--save-mark": 0, "--restore-mark": 0, "--mask": 1,
                              "--nfmask": 1, "--ctmask": 1})
def parse_connmark(opts: Sequence[Opt], ctx: ParseCtx) -> ConnmarkTarget:
    mode = None
    ctmark, ctmask, nfmask = 0, FULL, FULL
    for o in opts:
        if o.name == "--set-xmark":
            mode = "set"
            ctmark, ctmask = parse_value_mask(o.args[0], ctx, o.name)
        elif o.name == "--set-mark":
            mode = "set"
            v, m = parse_value_mask(o.args[0], ctx, o.name)
            ctmark, ctmask = v, m | v
        elif o.name in ("--and-mark", "--or-mark", "--xor-mark"):
            mode = "set"
            v = parse_int(o.args[0], ctx, o.name)
            ctmark, ctmask = {"--and-mark": (0, ~v & FULL), "--or-mark": (v, v), "--xor-mark": (v, 0)}[o.name]
        elif o.name in ("--save-mark", "--restore-mark"):
            mode = o.name[2:-5]
        elif o.name == "--mask":
            ctmask = nfmask = parse_int(o.args[0], ctx, o.name)
        elif o.name == "--nfmask":
            nfmask = parse_int(o.args[0], ctx, o.name)
        elif o.name == "--ctmask":
            ctmask = parse_int(o.args[0], ctx, o.name)
    if mode is None:
        raise ctx.error("CONNMARK needs --set-xmark, --set-mark, --save-mark or --restore-mark")
    return ConnmarkTarget(mode, ctmark, ctmask, nfmask)
