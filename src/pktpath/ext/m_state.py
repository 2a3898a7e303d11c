"""``-m state --state`` (net/netfilter/xt_state.c, state_mt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.ctstate import packet_state, parse_states, render_states
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class StateMatch(Match):
    name: ClassVar[str] = "state"
    needs_conntrack: ClassVar[bool] = True
    states: frozenset[str]
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return (packet_state(skb) in self.states) ^ self.invert

    def render(self) -> str:
        return f"-m state {'! ' if self.invert else ''}--state {render_states(self.states)}"


@register_match("state", {"--state": 1})
def parse_state(opts: Sequence[Opt], ctx: ParseCtx) -> StateMatch:
    if not opts:
        raise ctx.error("-m state needs --state STATE[,STATE...]")
    o = opts[-1]
    return StateMatch(parse_states(o.args[0], ctx, ("INVALID", "ESTABLISHED", "NEW", "RELATED", "UNTRACKED")),
                      o.invert)
