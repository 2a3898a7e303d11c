"""``-m iprange`` (net/netfilter/xt_iprange.c, iprange_mt4): inclusive address ranges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.addr import int_to_ip, ip_to_int
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class IprangeMatch(Match):
    name: ClassVar[str] = "iprange"
    src: tuple[int, int] | None = None
    dst: tuple[int, int] | None = None
    inv_src: bool = False
    inv_dst: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if self.src and (self.src[0] <= skb.src <= self.src[1]) == self.inv_src:
            return False
        if self.dst and (self.dst[0] <= skb.dst <= self.dst[1]) == self.inv_dst:
            return False
        return True

    def render(self) -> str:
        out = ["-m iprange"]
        if self.src:
            out.append(("! " if self.inv_src else "") + f"--src-range {_text(self.src)}")
        if self.dst:
            out.append(("! " if self.inv_dst else "") + f"--dst-range {_text(self.dst)}")
        return " ".join(out)


def _text(r: tuple[int, int]) -> str:
    return f"{int_to_ip(r[0])}-{int_to_ip(r[1])}"


def _range(text: str, ctx: ParseCtx) -> tuple[int, int]:
    a, sep, b = text.partition("-")
    try:
        lo = ip_to_int(a)
        hi = ip_to_int(b) if sep else lo
    except ValueError:
        raise ctx.error(f"iprange: bad range {text!r}, expected ADDR[-ADDR]") from None
    if hi < lo:
        raise ctx.error(f"iprange: range {text!r} is reversed")
    return lo, hi


@register_match("iprange", {"--src-range": 1, "--dst-range": 1})
def parse_iprange(opts: Sequence[Opt], ctx: ParseCtx) -> IprangeMatch:
    kw: dict[str, object] = {}
    for o in opts:
        key = "src" if o.name == "--src-range" else "dst"
        kw[key], kw["inv_" + key] = _range(o.args[0], ctx), o.invert
    if not kw:
        raise ctx.error("iprange needs --src-range or --dst-range")
    return IprangeMatch(**kw)  # type: ignore[arg-type]
