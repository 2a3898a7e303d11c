"""Port and port-range arguments shared by tcp, udp, sctp, multiport."""

from __future__ import annotations

import socket

from pktpath.ext.registry import ParseCtx


def parse_port(text: str, ctx: ParseCtx, proto: str = "tcp") -> int:
    if text.isdigit():
        value = int(text)
        if value > 65535:
            raise ctx.error(f"port {text} out of range 0-65535")
        return value
    try:
        return socket.getservbyname(text, proto)
    except OSError:
        raise ctx.error(f"invalid port/service {text!r}, expected a number 0-65535") from None


def parse_range(text: str, ctx: ParseCtx, proto: str = "tcp") -> tuple[int, int]:
    """``N``, ``N:M``, ``:M`` or ``N:`` (iptables' xtables_parse_port range forms)."""
    lo, sep, hi = text.partition(":")
    first = parse_port(lo, ctx, proto) if lo else 0
    last = (parse_port(hi, ctx, proto) if hi else 65535) if sep else first
    if first > last:
        first, last = last, first  # iptables swaps an inverted range
    return first, last


def render_range(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}:{r[1]}"
