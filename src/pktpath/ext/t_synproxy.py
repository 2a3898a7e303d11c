"""``-j SYNPROXY`` (net/netfilter/xt_SYNPROXY.c, synproxy_tg4): answers a SYN with a
SYN-cookie SYN/ACK itself (NF_STOLEN); checks the cookie of the client's ACK (a valid one is
STOLEN and replayed to the server, an invalid one DROPped); lets anything else continue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class SynproxyTarget(Target):
    name: ClassVar[str] = "SYNPROXY"
    needs_conntrack: ClassVar[bool] = True
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.INPUT, Hook.FORWARD})
    sack_perm: bool = False
    timestamp: bool = False
    wscale: int | None = None
    mss: int | None = None
    ecn: bool = False

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        flags = skb.tcp_flags
        if flags & TCP_SYN and not flags & (TCP_ACK | TCP_FIN | TCP_RST):
            skb.notes.append("SYNPROXY: the SYN is answered with a SYN-cookie SYN/ACK and consumed (stolen)")
            return Verdict.STOLEN
        if flags & TCP_ACK and not flags & (TCP_FIN | TCP_RST | TCP_SYN):
            skb.notes.append("SYNPROXY: the ACK's SYN cookie is checked; a lone ACK carries no valid cookie, so it is "
                             "dropped (a valid one would be stolen and the handshake replayed to the server)")
            return Verdict.DROP
        return Verdict.CONTINUE

    def render(self) -> str:
        out = "-j SYNPROXY"
        if self.sack_perm:
            out += " --sack-perm"
        if self.timestamp:
            out += " --timestamp"
        if self.wscale is not None:
            out += f" --wscale {self.wscale}"
        if self.mss is not None:
            out += f" --mss {self.mss}"
        if self.ecn:
            out += " --ecn"
        return out


@register_target("SYNPROXY", {"--sack-perm": 0, "--timestamp": 0, "--wscale": 1, "--mss": 1, "--ecn": 0})
def parse_synproxy(opts: Sequence[Opt], ctx: ParseCtx) -> SynproxyTarget:
    if ctx.proto != IPPROTO_TCP or ctx.inv_proto:
        raise ctx.error("SYNPROXY: needs '-p tcp' (the kernel refuses it otherwise)")
    kw: dict[str, object] = {}
    for o in opts:
        if o.name == "--wscale":
            kw["wscale"] = parse_int(o.args[0], ctx, o.name, 0, 14)
        elif o.name == "--mss":
            kw["mss"] = parse_int(o.args[0], ctx, o.name, 0, 0xFFFF)
        else:
            kw[o.name[2:].replace("-", "_")] = True
    return SynproxyTarget(**kw)  # type: ignore[arg-type]
