"""``-m nfacct`` (net/netfilter/xt_nfacct.c, nfacct_mt): counts into an nfacct object and
matches unless the object has a quota that is not yet reached
(``nfnl_acct_overquota() != NFACCT_UNDERQUOTA``).  nfacct objects are not in the snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_helper import save_string
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class NfacctMatch(Match):
    name: ClassVar[str] = "nfacct"
    acct: str

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain(f"nfacct '{self.acct}': matches unless the object has a quota not yet exceeded "
                         "(nfacct objects are not in the snapshot; without a quota it always matches)")

    def render(self) -> str:
        # libxt_nfacct prints " --nfacct-name " and then xtables_save_string() adds its own space.
        return f"-m nfacct --nfacct-name  {save_string(self.acct)}"


@register_match("nfacct", {"--nfacct-name": 1})
def parse_nfacct(opts: Sequence[Opt], ctx: ParseCtx) -> NfacctMatch:
    if not opts:
        raise ctx.error("nfacct: option \"--nfacct-name\" must be specified")
    if opts[-1].invert:
        raise ctx.error("nfacct: option \"--nfacct-name\" cannot be inverted")
    return NfacctMatch(opts[-1].args[0])
