"""``-m helper`` (net/netfilter/xt_helper.c, helper_mt): the helper of the connection's
*master*, i.e. it matches connections a helper expected (RELATED).  A connection this
packet creates has no master; for a loaded connection the master is not in the snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import CtInfo, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def save_string(value: str) -> str:
    """libxtables xtables_save_string(): bare when safe, else double-quoted with \\ escapes."""
    if value and all(c in NO_QUOTE for c in value):
        return value
    return '"' + "".join("\\" + c if c in "\"\\'" else c for c in value) + '"'


@dataclass(frozen=True, slots=True)
class HelperMatch(Match):
    name: ClassVar[str] = "helper"
    needs_conntrack: ClassVar[bool] = True
    helper: str
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        ct = skb.ct
        if ct is None:
            return self.invert
        if ct.origin == "new" and skb.ctinfo == CtInfo.NEW:
            return self.invert  # not an expected connection: ct->master is NULL
        return Uncertain(f"helper {self.helper!r}: whether the connection was expected by a helper of its "
                         "master connection (not in the snapshot)")

    def render(self) -> str:
        return f"-m helper {'! ' if self.invert else ''}--helper {save_string(self.helper)}"


@register_match("helper", {"--helper": 1})
def parse_helper(opts: Sequence[Opt], ctx: ParseCtx) -> HelperMatch:
    if not opts:
        raise ctx.error("helper: option \"--helper\" must be specified")
    o = opts[-1]
    return HelperMatch(o.args[0], o.invert)
