"""``-m socket`` (net/netfilter/xt_socket.c, socket_mt4_v1_v2_v3): whether a local socket
(established, or listening unless --nowildcard) takes the packet.  Sockets are not in the
snapshot, so the match is undecidable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

FLAGS = ("--transparent", "--nowildcard", "--restore-skmark")


@dataclass(frozen=True, slots=True)
class SocketMatch(Match):
    name: ClassVar[str] = "socket"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.PREROUTING, Hook.INPUT})
    flags: frozenset[str] = frozenset()

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain("socket: whether a local socket owns this flow (sockets are not in the snapshot)")

    def render(self) -> str:
        return " ".join(["-m socket", *(f for f in FLAGS if f in self.flags)])


@register_match("socket", dict.fromkeys(FLAGS, 0))
def parse_socket(opts: Sequence[Opt], ctx: ParseCtx) -> SocketMatch:
    if any(o.invert for o in opts):
        raise ctx.error("socket: options cannot be inverted")
    return SocketMatch(frozenset(o.name for o in opts))
