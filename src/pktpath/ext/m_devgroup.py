"""``-m devgroup`` (net/netfilter/xt_devgroup.c, devgroup_mt): the group of the input or
output device, from the snapshot's links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

FULL = 0xFFFFFFFF
GROUP_NAMES = {"default": 0}  # /etc/iproute2/group as iproute2 ships it
SRC_HOOKS = frozenset({Hook.PREROUTING, Hook.INPUT, Hook.FORWARD})
DST_HOOKS = frozenset({Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING})


def render_group(value: int, mask: int) -> str:
    if mask == FULL:
        for name, number in GROUP_NAMES.items():
            if number == value:
                return name
        return f"{value:#x}"
    return f"{value:#x}/{mask:#x}"


@dataclass(frozen=True, slots=True)
class DevgroupMatch(Match):
    name: ClassVar[str] = "devgroup"
    src: tuple[int, int] | None = None
    dst: tuple[int, int] | None = None
    inv_src: bool = False
    inv_dst: bool = False

    def valid_hooks(self) -> frozenset[Hook]:
        hooks = frozenset(Hook)
        if self.src is not None:
            hooks &= SRC_HOOKS
        if self.dst is not None:
            hooks &= DST_HOOKS
        return hooks

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        for spec, inv, dev in ((self.src, self.inv_src, par.in_dev), (self.dst, self.inv_dst, par.out_dev)):
            if spec is None:
                continue
            link = par.host.net.link(dev or "")
            if link is None:
                return Uncertain(f"devgroup: device {dev!r} is not in the snapshot, so its group is unknown")
            if (((spec[0] ^ link.group) & spec[1]) != 0) != inv:
                return False
        return True

    def render(self) -> str:
        out = ["-m devgroup"]
        if self.src is not None:
            out.append(("! " if self.inv_src else "") + "--src-group " + render_group(*self.src))
        if self.dst is not None:
            out.append(("! " if self.inv_dst else "") + "--dst-group " + render_group(*self.dst))
        return " ".join(out)


def _group(text: str, ctx: ParseCtx, what: str) -> tuple[int, int]:
    if text in GROUP_NAMES:
        return GROUP_NAMES[text], FULL
    value, sep, mask = text.partition("/")
    return parse_int(value, ctx, what), parse_int(mask, ctx, what) if sep else FULL


@register_match("devgroup", {"--src-group": 1, "--dst-group": 1})
def parse_devgroup(opts: Sequence[Opt], ctx: ParseCtx) -> DevgroupMatch:
    kw: dict[str, object] = {}
    for o in opts:
        key = "src" if o.name == "--src-group" else "dst"
        kw[key], kw["inv_" + key] = _group(o.args[0], ctx, o.name), o.invert
    if not kw:
        raise ctx.error("devgroup: --src-group or --dst-group is required")
    return DevgroupMatch(**kw)  # type: ignore[arg-type]
