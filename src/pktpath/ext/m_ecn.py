"""``-m ecn`` (net/netfilter/xt_ecn.c, ecn_mt4): the IP ECT bits and the TCP ECE/CWR flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_CWR, TCP_ECE, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult


@dataclass(frozen=True, slots=True)
class EcnMatch(Match):
    name: ClassVar[str] = "ecn"
    ece: bool = False
    cwr: bool = False
    ip_ect: int | None = None
    inv_ece: bool = False
    inv_cwr: bool = False
    inv_ip: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if self.ip_ect is not None and ((skb.tos & 0x03) == self.ip_ect) == self.inv_ip:
            return False
        # match_tcp() trusts the rule's -p tcp (checked at load time) and reads the header.
        if self.ece and bool(skb.tcp_flags & TCP_ECE) == self.inv_ece:
            return False
        if self.cwr and bool(skb.tcp_flags & TCP_CWR) == self.inv_cwr:
            return False
        return True

    def render(self) -> str:
        out = ["-m ecn"]
        if self.ece:
            out.append(("! " if self.inv_ece else "") + "--ecn-tcp-ece")
        if self.cwr:
            out.append(("! " if self.inv_cwr else "") + "--ecn-tcp-cwr")
        if self.ip_ect is not None:
            out.append(("! " if self.inv_ip else "") + f"--ecn-ip-ect {self.ip_ect}")
        return " ".join(out)


@register_match("ecn", {"--ecn-tcp-cwr": 0, "--ecn-tcp-ece": 0, "--ecn-ip-ect": 1})
def parse_ecn(opts: Sequence[Opt], ctx: ParseCtx) -> EcnMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.name == "--ecn-ip-ect":
            kw["ip_ect"], kw["inv_ip"] = parse_int(o.args[0], ctx, o.name, 0, 3), o.invert
        elif o.name == "--ecn-tcp-ece":
            kw["ece"], kw["inv_ece"] = True, o.invert
        else:
            kw["cwr"], kw["inv_cwr"] = True, o.invert
    if not kw:
        raise ctx.error("ecn: at least one of --ecn-tcp-cwr, --ecn-tcp-ece or --ecn-ip-ect is required")
    if (kw.get("ece") or kw.get("cwr")) and (ctx.proto != IPPROTO_TCP or ctx.inv_proto):
        raise ctx.error("ecn: cannot match TCP bits in a rule without '-p tcp' (the kernel refuses it)")
    return EcnMatch(**kw)  # type: ignore[arg-type]
