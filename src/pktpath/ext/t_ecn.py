"""``-j ECN`` (net/ipv4/netfilter/ipt_ECN.c, ecn_tg): rewrites the IP ECT bits and/or the
TCP ECE/CWR flags (the TCP ones only in a ``-p tcp`` rule)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_CWR, TCP_ECE, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class EcnTarget(Target):
    name: ClassVar[str] = "ECN"
    tables: ClassVar[frozenset[str] | None] = frozenset({"mangle"})
    ece: int | None = None
    cwr: int | None = None
    ip_ect: int | None = None

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        if self.ip_ect is not None:
            skb.tos = (skb.tos & ~0x03) | self.ip_ect
        if skb.proto == IPPROTO_TCP:
            for value, bit in ((self.ece, TCP_ECE), (self.cwr, TCP_CWR)):
                if value is not None:
                    skb.tcp_flags = (skb.tcp_flags | bit) if value else (skb.tcp_flags & ~bit)
        return Verdict.CONTINUE

    def render(self) -> str:
        if self.ece == 0 and self.cwr == 0 and self.ip_ect is None:
            return "-j ECN --ecn-tcp-remove"
        out = "-j ECN"
        if self.ece is not None:
            out += f" --ecn-tcp-ece {self.ece}"
        if self.cwr is not None:
            out += f" --ecn-tcp-cwr {self.cwr}"
        if self.ip_ect is not None:
            out += f" --ecn-ip-ect {self.ip_ect}"
        return out


@register_target("ECN", {"--ecn-tcp-remove": 0, "--ecn-tcp-cwr": 1, "--ecn-tcp-ece": 1, "--ecn-ip-ect": 1})
def parse_ecn_target(opts: Sequence[Opt], ctx: ParseCtx) -> EcnTarget:
    kw: dict[str, int] = {}
    for o in opts:
        if o.name == "--ecn-tcp-remove":
            kw["ece"] = kw["cwr"] = 0
        elif o.name == "--ecn-ip-ect":
            kw["ip_ect"] = parse_int(o.args[0], ctx, o.name, 0, 3)
        else:
            kw[o.name[10:]] = parse_int(o.args[0], ctx, o.name, 0, 1)
    if not kw:
        raise ctx.error("ECN: one of --ecn-tcp-remove, --ecn-tcp-cwr, --ecn-tcp-ece or --ecn-ip-ect is required")
    if ("ece" in kw or "cwr" in kw) and (ctx.proto != IPPROTO_TCP or ctx.inv_proto):
        raise ctx.error("ECN: cannot use TCP operations in a rule without '-p tcp' (the kernel refuses it)")
    return EcnTarget(**kw)
