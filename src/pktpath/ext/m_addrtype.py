"""``-m addrtype`` (net/netfilter/xt_addrtype.c, addrtype_mt_v1): the route type of the
source/destination address in the local table, optionally only through the in/out device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult

TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
         "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE")
IFACE_IN_HOOKS = frozenset({Hook.PREROUTING, Hook.INPUT, Hook.FORWARD})
IFACE_OUT_HOOKS = frozenset({Hook.POSTROUTING, Hook.OUTPUT, Hook.FORWARD})


@dataclass(frozen=True, slots=True)
class AddrtypeMatch(Match):
    name: ClassVar[str] = "addrtype"
    src_types: frozenset[str] = frozenset()
    dst_types: frozenset[str] = frozenset()
    inv_src: bool = False
    inv_dst: bool = False
    limit_in: bool = False
    limit_out: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        dev = par.in_dev if self.limit_in else par.out_dev if self.limit_out else None
        if self.src_types and (par.host.addr_type(skb.src, dev) in self.src_types) == self.inv_src:
            return False
        if self.dst_types and (par.host.addr_type(skb.dst, dev) in self.dst_types) == self.inv_dst:
            return False
        return True

    def valid_hooks(self) -> frozenset[Hook] | None:
        """addrtype_mt_checkentry_v1: an interface limit needs a hook that has that interface."""
        if self.limit_in:
            return IFACE_IN_HOOKS
        if self.limit_out:
            return IFACE_OUT_HOOKS
        return None

    def render(self) -> str:
        out = ["-m addrtype"]
        if self.src_types:
            out.append(("! " if self.inv_src else "") + "--src-type " + _render(self.src_types))
        if self.dst_types:
            out.append(("! " if self.inv_dst else "") + "--dst-type " + _render(self.dst_types))
        if self.limit_in:
            out.append("--limit-iface-in")
        if self.limit_out:
            out.append("--limit-iface-out")
        return " ".join(out)


def _render(types: frozenset[str]) -> str:
    return ",".join(t for t in TYPES if t in types)


def _types(text: str, ctx: ParseCtx) -> frozenset[str]:
    out = set()
    for t in text.split(","):
        if t.upper() not in TYPES:
            raise ctx.error(f"addrtype: unknown type {t!r}, expected " + ", ".join(TYPES))
        out.add(t.upper())
    return frozenset(out)


@register_match("addrtype", {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0})
def parse_addrtype(opts: Sequence[Opt], ctx: ParseCtx) -> AddrtypeMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.name == "--src-type":
            kw["src_types"], kw["inv_src"] = _types(o.args[0], ctx), o.invert
        elif o.name == "--dst-type":
            kw["dst_types"], kw["inv_dst"] = _types(o.args[0], ctx), o.invert
        elif o.name == "--limit-iface-in":
            kw["limit_in"] = True
        else:
            kw["limit_out"] = True
    if kw.get("limit_in") and kw.get("limit_out"):
        raise ctx.error("addrtype: --limit-iface-in and --limit-iface-out cannot be used together")
    return AddrtypeMatch(**kw)  # type: ignore[arg-type]
