"""``-m ipvs`` (net/netfilter/xt_ipvs.c, ipvs_mt): properties of an IPVS connection.
pktpath does not simulate IPVS, so no packet has ``skb->ipvs_property``: ``--ipvs`` alone
matches only inverted and every other option fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import PROTO_NAMES, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.addr import Prefix, int_to_ip
from pktpath.model.xtables import Match, MatchResult

ORDER = ("--vproto", "--vaddr", "--vport", "--vdir", "--vmethod", "--vportctl")
METHODS = ("GATE", "IPIP", "MASQ")


@dataclass(frozen=True, slots=True)
class IpvsMatch(Match):
    name: ClassVar[str] = "ipvs"
    inv_ipvs: bool = False
    items: tuple[tuple[str, str, bool], ...] = ()  # (option, rendered value, invert)

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if not self.items:
            return self.inv_ipvs  # skb->ipvs_property is 0
        return False  # "if (!skb->ipvs_property) { match = false; goto out; }"

    def render(self) -> str:
        if not self.items:
            return f"-m ipvs {'! ' if self.inv_ipvs else ''}--ipvs"
        out = ["-m ipvs"]
        for opt in ORDER:
            for name, value, inv in self.items:
                if name != opt:
                    continue
                if name == "--vdir":
                    out.append(f"--vdir {value}")
                else:
                    out.append(("! " if inv else "") + f"{name} {value}")
        return " ".join(out)


@register_match("ipvs", {"--ipvs": 0, "--vproto": 1, "--vaddr": 1, "--vport": 1, "--vdir": 1, "--vmethod": 1,
                         "--vportctl": 1})
def parse_ipvs(opts: Sequence[Opt], ctx: ParseCtx) -> IpvsMatch:
    inv_ipvs = False
    items: list[tuple[str, str, bool]] = []
    for o in opts:
        a = o.args[0] if o.args else ""
        if o.name == "--ipvs":
            inv_ipvs = o.invert
        elif o.name == "--vproto":
            proto = PROTO_NAMES.get(a.lower(), int(a) if a.isdigit() else -1)
            if not 0 <= proto <= 255:
                raise ctx.error(f"ipvs: unknown protocol {a!r}")
            items.append((o.name, str(proto), o.invert))
        elif o.name == "--vaddr":
            try:
                p = Prefix.parse(a)
            except ValueError:
                raise ctx.error(f"ipvs: bad --vaddr {a!r}") from None
            items.append((o.name, int_to_ip(p.addr) + ("" if p.plen == 32 else f"/{p.plen}"), o.invert))
        elif o.name in ("--vport", "--vportctl"):
            items.append((o.name, str(parse_int(a, ctx, o.name, 0, 65535)), o.invert))
        elif o.name == "--vdir":
            if a.upper() not in ("ORIGINAL", "REPLY"):
                raise ctx.error("ipvs: --vdir expects ORIGINAL or REPLY")
            items.append((o.name, a.upper(), False))
        else:
            if a.upper() not in METHODS:
                raise ctx.error("ipvs: --vmethod expects GATE, IPIP or MASQ")
            items.append((o.name, a.upper(), o.invert))
    return IpvsMatch(inv_ipvs, tuple(items))
