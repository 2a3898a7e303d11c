"""Parsing of the NAT targets' ``ADDR[-ADDR][:PORT[-PORT]]`` arguments (libxt_DNAT/SNAT)."""

from __future__ import annotations

from pktpath.ext.registry import ParseCtx
from pktpath.model.addr import ip_to_int
from pktpath.model.nat import NatRange


def parse_ports(text: str, ctx: ParseCtx, what: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        first = int(lo)
        last = int(hi) if sep else first
    except ValueError:
        raise ctx.error(f"{what}: invalid port range {text!r}, expected PORT[-PORT]") from None
    if not (0 <= first <= 65535 and 0 <= last <= 65535) or first > last:
        raise ctx.error(f"{what}: invalid port range {text!r}")
    return first, last


def parse_nat_range(text: str, ctx: ParseCtx, what: str, ports_allowed: bool) -> NatRange:
    if text.count(":") > 1 or text.startswith("["):
        raise ctx.unsupported(f"{what}: {text!r} is an IPv6 address: IPv6 NAT is not modelled yet")
    addr_text, sep, port_text = text.partition(":")
    lo = hi = None
    if addr_text:
        a, dash, b = addr_text.partition("-")
        try:
            lo = ip_to_int(a)
            hi = ip_to_int(b) if dash else lo
        except ValueError:
            raise ctx.error(f"{what}: bad IP address {addr_text!r}, expected ADDR[-ADDR][:PORT[-PORT]]") from None
        if hi < lo:
            raise ctx.error(f"{what}: bad address range {addr_text!r}")
    pmin = pmax = None
    if sep:
        if not ports_allowed:
            raise ctx.error(f"{what}: a port needs -p tcp, udp, sctp, dccp or udplite in the rule")
        pmin, pmax = parse_ports(port_text, ctx, what)
    return NatRange(lo, hi, pmin, pmax)
