"""``-m icmp --icmp-type`` (net/ipv4/netfilter/ip_tables.c, icmp_match)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_ICMP, Skb, XtParams
from pktpath.ext.m_tcp import check_proto
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult

# libxt_icmp's names: (type, min code, max code).
ICMP_NAMES: dict[str, tuple[int, int, int]] = {
    "any": (0xFF, 0, 0xFF),
    "echo-reply": (0, 0, 0xFF), "pong": (0, 0, 0xFF),
    "destination-unreachable": (3, 0, 0xFF),
    "network-unreachable": (3, 0, 0), "host-unreachable": (3, 1, 1), "protocol-unreachable": (3, 2, 2),
    "port-unreachable": (3, 3, 3), "fragmentation-needed": (3, 4, 4), "source-route-failed": (3, 5, 5),
    "network-unknown": (3, 6, 6), "host-unknown": (3, 7, 7), "network-prohibited": (3, 9, 9),
    "host-prohibited": (3, 10, 10), "TOS-network-unreachable": (3, 11, 11),
    "TOS-host-unreachable": (3, 12, 12), "communication-prohibited": (3, 13, 13),
    "host-precedence-violation": (3, 14, 14), "precedence-cutoff": (3, 15, 15),
    "source-quench": (4, 0, 0xFF),
    "redirect": (5, 0, 0xFF), "network-redirect": (5, 0, 0), "host-redirect": (5, 1, 1),
    "TOS-network-redirect": (5, 2, 2), "TOS-host-redirect": (5, 3, 3),
    "echo-request": (8, 0, 0xFF), "ping": (8, 0, 0xFF),
    "router-advertisement": (9, 0, 0xFF), "router-solicitation": (10, 0, 0xFF),
    "time-exceeded": (11, 0, 0xFF), "ttl-exceeded": (11, 0, 0xFF),
    "ttl-zero-during-transit": (11, 0, 0), "ttl-zero-during-reassembly": (11, 1, 1),
    "parameter-problem": (12, 0, 0xFF), "ip-header-bad": (12, 0, 0), "required-option-missing": (12, 1, 1),
    "timestamp-request": (13, 0, 0xFF), "timestamp-reply": (14, 0, 0xFF),
    "address-mask-request": (17, 0, 0xFF), "address-mask-reply": (18, 0, 0xFF),
}


def parse_icmp_type(text: str, ctx: ParseCtx) -> tuple[int, int, int]:
    for name, value in ICMP_NAMES.items():
        if name.lower() == text.lower():
            return value
    # a unique prefix of a name is accepted, as libxt_icmp does
    hits = [v for n, v in ICMP_NAMES.items() if n.lower().startswith(text.lower())]
    if len(hits) == 1:
        return hits[0]
    t, sep, c = text.partition("/")
    try:
        icmp_type = int(t)
        code = int(c) if sep else None
    except ValueError:
        raise ctx.error(f"unknown ICMP type {text!r}, expected a name (echo-request...) or TYPE[/CODE]") from None
    if not 0 <= icmp_type <= 255 or (code is not None and not 0 <= code <= 255):
        raise ctx.error(f"ICMP type/code out of range in {text!r}")
    return (icmp_type, code, code) if code is not None else (icmp_type, 0, 0xFF)


@dataclass(frozen=True, slots=True)
class IcmpMatch(Match):
    name: ClassVar[str] = "icmp"
    type: int
    code_min: int = 0
    code_max: int = 0xFF
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto != IPPROTO_ICMP:
            return False
        hit = self.type == 0xFF or (skb.icmp_type == self.type and
                                    self.code_min <= (skb.icmp_code or 0) <= self.code_max)
        return hit ^ self.invert

    def render(self) -> str:
        if self.type == 0xFF:
            spec = "any"
        elif self.code_min == 0 and self.code_max == 0xFF:
            spec = str(self.type)
        else:
            spec = f"{self.type}/{self.code_min}"
        return f"-m icmp {'! ' if self.invert else ''}--icmp-type {spec}"


@register_match("icmp", {"--icmp-type": 1})
def parse_icmp(opts: Sequence[Opt], ctx: ParseCtx) -> IcmpMatch:
    check_proto(ctx, IPPROTO_ICMP, "icmp")
    if not opts:
        return IcmpMatch(0xFF)  # iptables defaults to "any"
    o = opts[-1]
    t, lo, hi = parse_icmp_type(o.args[0], ctx)
    return IcmpMatch(t, lo, hi, o.invert)
