"""``-m pkttype`` (net/netfilter/xt_pkttype.c, pkttype_mt): the link-layer packet type.

A locally generated packet is PACKET_HOST in OUTPUT and POSTROUTING (the socket's skb is
never classified); PACKET_LOOPBACK (a looped-back multicast/broadcast copy) counts as
multicast for a multicast destination and broadcast otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult

# libxt_pkttype's supported_types: name -> skb->pkt_type (the first name is the one saved).
PKT_TYPES = {"unicast": "host", "broadcast": "broadcast", "multicast": "multicast", "otherhost": "otherhost",
             "bcast": "broadcast", "mcast": "multicast", "host": "host"}
SAVE_NAME = {"host": "unicast", "broadcast": "broadcast", "multicast": "multicast", "otherhost": "otherhost"}


def effective_type(skb: Skb, par: XtParams) -> str:
    if par.hook in (Hook.OUTPUT, Hook.POSTROUTING) and skb.iif is None:
        return "host"
    if skb.pkt_type == "loopback":
        return "multicast" if (skb.dst >> 28) == 0xE else "broadcast"
    return skb.pkt_type


@dataclass(frozen=True, slots=True)
class PkttypeMatch(Match):
    name: ClassVar[str] = "pkttype"
    pkt_type: str
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return (effective_type(skb, par) == self.pkt_type) ^ self.invert

    def render(self) -> str:
        return f"-m pkttype {'! ' if self.invert else ''}--pkt-type {SAVE_NAME[self.pkt_type]}"


@register_match("pkttype", {"--pkt-type": 1})
def parse_pkttype(opts: Sequence[Opt], ctx: ParseCtx) -> PkttypeMatch:
    if not opts:
        raise ctx.error("pkttype: option \"--pkt-type\" must be specified")
    o = opts[-1]
    kind = PKT_TYPES.get(o.args[0].lower())
    if kind is None:
        raise ctx.error(f"Bad packet type '{o.args[0]}': expected unicast, broadcast, multicast or otherhost")
    return PkttypeMatch(kind, o.invert)
