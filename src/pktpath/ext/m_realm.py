"""``-m realm`` (net/ipv4/netfilter/ipt_realm.c -> net/netfilter/xt_realm.c, realm_mt):
``(dst->tclassid & mask) == id``, the routing realm of the packet's route.  Route realms are
not in pktpath's route model, so the match is undecidable (with no realms anywhere the
tclassid is 0)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

FULL = 0xFFFFFFFF
REALM_NAMES = {"cosmos": 0}  # /etc/iproute2/rt_realms as iproute2 ships it


@dataclass(frozen=True, slots=True)
class RealmMatch(Match):
    name: ClassVar[str] = "realm"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.INPUT, Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING})
    realm: int
    mask: int = FULL
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain("realm: the route's realm (tclassid) is not in the snapshot's route model; it is 0 "
                         "unless a route or rule sets 'realms'")

    def render(self) -> str:
        if self.mask == FULL:
            text = next((n for n, v in REALM_NAMES.items() if v == self.realm), f"{self.realm:#x}")
        else:
            text = f"{self.realm:#x}/{self.mask:#x}"
        return f"-m realm {'! ' if self.invert else ''}--realm {text}"


@register_match("realm", {"--realm": 1})
def parse_realm(opts: Sequence[Opt], ctx: ParseCtx) -> RealmMatch:
    if not opts:
        raise ctx.error("realm: option \"--realm\" must be specified")
    o = opts[-1]
    if o.args[0] in REALM_NAMES:
        return RealmMatch(REALM_NAMES[o.args[0]], FULL, o.invert)
    value, sep, mask = o.args[0].partition("/")
    return RealmMatch(parse_int(value, ctx, "--realm"), parse_int(mask, ctx, "--realm") if sep else FULL, o.invert)
