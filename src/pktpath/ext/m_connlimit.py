"""``-m connlimit`` (net/netfilter/xt_connlimit.c, connlimit_mt): how many connections
share this packet's masked address.  The count includes the packet's own connection, so
``--connlimit-above 0`` always matches a tracked packet; other limits depend on the
connections the rule has counted, which a snapshot does not hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class ConnlimitMatch(Match):
    name: ClassVar[str] = "connlimit"
    needs_conntrack: ClassVar[bool] = True
    limit: int
    upto: bool = False  # XT_CONNLIMIT_INVERT
    mask: int = 32
    daddr: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if self.limit == 0:
            return not self.upto  # the count includes this packet's own tuple: connections >= 1 > 0
        side = "destination" if self.daddr else "source"
        return Uncertain(f"connlimit: how many connections share this {side} /{self.mask} (counted from earlier "
                         "traffic, not in the snapshot)")

    def render(self) -> str:
        kind = "--connlimit-upto" if self.upto else "--connlimit-above"
        return (f"-m connlimit {kind} {self.limit} --connlimit-mask {self.mask} "
                + ("--connlimit-daddr" if self.daddr else "--connlimit-saddr"))


@register_match("connlimit", {"--connlimit-upto": 1, "--connlimit-above": 1, "--connlimit-mask": 1,
                              "--connlimit-saddr": 0, "--connlimit-daddr": 0})
def parse_connlimit(opts: Sequence[Opt], ctx: ParseCtx) -> ConnlimitMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.name in ("--connlimit-upto", "--connlimit-above"):
            kw["limit"] = parse_int(o.args[0], ctx, o.name)
            kw["upto"] = (o.name == "--connlimit-upto") != o.invert
        elif o.invert:
            raise ctx.error(f"connlimit: option \"{o.name}\" cannot be inverted")
        elif o.name == "--connlimit-mask":
            kw["mask"] = parse_int(o.args[0], ctx, o.name, 0, 32)
        else:
            kw["daddr"] = o.name == "--connlimit-daddr"
    if "limit" not in kw:
        raise ctx.error("connlimit: you must specify --connlimit-above or --connlimit-upto")
    return ConnlimitMatch(**kw)  # type: ignore[arg-type]
