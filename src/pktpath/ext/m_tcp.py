"""``-m tcp``: ports, --tcp-flags, --syn, --tcp-option (net/netfilter/xt_tcpudp.c, tcp_mt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_ACK, TCP_FLAG_NAMES, TCP_RST, TCP_SYN, Skb, XtParams
from pktpath.ext.ports import parse_range, render_range
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

ALL_FLAGS = 0x3F  # iptables' "ALL" is FIN..URG (ECE/CWR are spelled out)


def parse_flags(text: str, ctx: ParseCtx) -> int:
    if text == "ALL":
        return ALL_FLAGS
    if text == "NONE":
        return 0
    value = 0
    for name in text.split(","):
        # libxt_tcp knows FIN SYN RST PSH ACK URG only: iptables 1.8.9 refuses ECE and CWR here.
        if name.upper() not in TCP_FLAG_NAMES or name.upper() in ("ECE", "CWR"):
            raise ctx.error(f"unknown TCP flag {name!r}, expected SYN,ACK,FIN,RST,URG,PSH,ALL,NONE")
        value |= TCP_FLAG_NAMES[name.upper()]
    return value


def render_flags(value: int) -> str:
    if value == 0:
        return "NONE"
    names = [n for n, b in TCP_FLAG_NAMES.items() if value & b]
    return ",".join(names)


def port_in(port: int | None, r: tuple[int, int] | None, inv: bool) -> bool:
    if r is None:
        return True
    assert port is not None
    return (r[0] <= port <= r[1]) ^ inv


@dataclass(frozen=True, slots=True)
class TcpMatch(Match):
    name: ClassVar[str] = "tcp"
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    inv_sport: bool = False
    inv_dport: bool = False
    flg_mask: int = 0
    flg_cmp: int = 0
    inv_flags: bool = False
    option: int | None = None
    inv_option: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto != IPPROTO_TCP:
            return False
        # port_in(skb.sport, self.sport, self.inv_sport) and the same for dport, inline
        r = self.sport
        if r is not None:
            port = skb.sport
            assert port is not None
            if not (r[0] <= port <= r[1]) ^ self.inv_sport:
                return False
        r = self.dport
        if r is not None:
            port = skb.dport
            assert port is not None
            if not (r[0] <= port <= r[1]) ^ self.inv_dport:
                return False
        if ((skb.tcp_flags & self.flg_mask) == self.flg_cmp) == self.inv_flags:
            return False
        if self.option is not None:
            return Uncertain(f"tcp option {self.option} is in the packet's TCP options, which a "
                             "packet description does not carry")
        return True

    def render(self) -> str:
        out = ["-m tcp"]
        if self.sport:
            out.append(("! " if self.inv_sport else "") + "--sport " + render_range(self.sport))
        if self.dport:
            out.append(("! " if self.inv_dport else "") + "--dport " + render_range(self.dport))
        if self.flg_mask:
            out.append(("! " if self.inv_flags else "") + "--tcp-flags "
                       + render_flags(self.flg_mask) + " " + render_flags(self.flg_cmp))
        if self.option is not None:
            out.append(("! " if self.inv_option else "") + f"--tcp-option {self.option}")
        return " ".join(out)


def check_proto(ctx: ParseCtx, proto: int, name: str) -> None:
    if ctx.proto != proto or ctx.inv_proto:
        # The kernel's checkentry refuses -m tcp unless the rule says -p tcp.
        raise ctx.error(f"-m {name} needs '-p {name}' in the same rule (the kernel refuses it otherwise)")


@register_match("tcp", {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1,
                        "--tcp-flags": 2, "--syn": 0, "--tcp-option": 1})
def parse_tcp(opts: Sequence[Opt], ctx: ParseCtx) -> TcpMatch:
    check_proto(ctx, IPPROTO_TCP, "tcp")
    kw: dict[str, object] = {}
    for o in opts:
        if o.name in ("--sport", "--source-port"):
            kw["sport"], kw["inv_sport"] = parse_range(o.args[0], ctx), o.invert
        elif o.name in ("--dport", "--destination-port"):
            kw["dport"], kw["inv_dport"] = parse_range(o.args[0], ctx), o.invert
        elif o.name == "--tcp-flags":
            kw["flg_mask"], kw["flg_cmp"] = parse_flags(o.args[0], ctx), parse_flags(o.args[1], ctx)
            kw["inv_flags"] = o.invert
        elif o.name == "--syn":
            kw["flg_mask"], kw["flg_cmp"] = TCP_SYN | TCP_RST | TCP_ACK | 1, TCP_SYN
            kw["inv_flags"] = o.invert
        elif o.name == "--tcp-option":
            kw["option"], kw["inv_option"] = int(o.args[0]), o.invert
    return TcpMatch(**kw)  # type: ignore[arg-type]
