"""``-m u32`` (net/netfilter/xt_u32.c, u32_match_it): 32-bit reads from the packet, shifted,
masked and followed (``@``), compared with value ranges.

The packet is rebuilt as far as its description goes: the IPv4 header without options and
the first bytes of the TCP/UDP/ICMP header.  Every bit is tracked as known or unknown (the
DF/MF flags, checksums, sequence numbers, TCP data offset, payload): a test whose result
depends on an unknown bit is undecidable."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

U32 = 0xFFFFFFFF
MAXSIZE = 10  # XT_U32_MAXSIZE: up to 11 tests, locations and values
OPS = {"&": "&", "<<": "<<", ">>": ">>", "@": "@"}
TOKEN_RE = re.compile(r"\s*(0[xX][0-9a-fA-F]+|\d+|<<|>>|&&|[&@=:,])")


class _Unknown(Exception):
    """The read depends on a bit the packet description does not give."""


class PacketBytes:
    """The packet as bytes plus a mask of the bits that are known."""

    def __init__(self, skb: Skb, fragoff: int) -> None:
        n = max(skb.length, 20)
        self.len = skb.length
        self.val = bytearray(n)
        self.known = bytearray(n)
        ip = [0x45, skb.tos, skb.length >> 8, skb.length & 0xFF, skb.ident >> 8 & 0xFF, skb.ident & 0xFF,
              (skb.frag_off >> 8) & 0x1F, skb.frag_off & 0xFF, skb.ttl, skb.proto, 0, 0,
              *skb.src.to_bytes(4, "big"), *skb.dst.to_bytes(4, "big")]
        known = [0xFF] * 20
        known[6] = 0x9F  # DF and MF unknown, reserved bit 0
        known[10] = known[11] = 0  # header checksum (depends on DF/MF)
        self._put(0, ip, known)
        if fragoff:
            return
        if skb.proto in (IPPROTO_TCP, IPPROTO_UDP) and skb.sport is not None and skb.dport is not None:
            ports = [skb.sport >> 8, skb.sport & 0xFF, skb.dport >> 8, skb.dport & 0xFF]
            self._put(20, ports, [0xFF] * 4)
            if skb.proto == IPPROTO_TCP:
                self._put(33, [skb.tcp_flags & 0xFF], [0xFF])
            else:
                ulen = skb.length - 20
                self._put(24, [ulen >> 8 & 0xFF, ulen & 0xFF], [0xFF, 0xFF])
        elif skb.proto == IPPROTO_ICMP and skb.icmp_type is not None:
            self._put(20, [skb.icmp_type, skb.icmp_code or 0], [0xFF, 0xFF])
            if skb.icmp_id is not None and skb.icmp_type in (0, 8, 13, 14):
                self._put(24, [skb.icmp_id >> 8 & 0xFF, skb.icmp_id & 0xFF], [0xFF, 0xFF])

    def _put(self, at: int, data: list[int], known: list[int]) -> None:
        for i, (v, k) in enumerate(zip(data, known, strict=True)):
            if at + i < len(self.val):
                self.val[at + i], self.known[at + i] = v & k, k

    def read(self, pos: int) -> tuple[int, int]:
        return (int.from_bytes(self.val[pos:pos + 4], "big"), int.from_bytes(self.known[pos:pos + 4], "big"))


@dataclass(frozen=True, slots=True)
class U32Test:
    location: tuple[tuple[str, int], ...]  # first op is "" (the starting position)
    values: tuple[tuple[int, int], ...]


def _test(t: U32Test, pkt: PacketBytes) -> bool:
    """One "&&" operand of u32_match_it(); raises _Unknown when undecidable."""
    at = 0
    pos = t.location[0][1]
    if pkt.len < 4 or pos > pkt.len - 4:
        return False
    val, known = pkt.read(pos)
    for op, number in t.location[1:]:
        if op == "&":
            val &= number
            known = (known | ~number) & U32
        elif op == "<<":
            if number >= 32:
                raise _Unknown
            val, known = (val << number) & U32, ((known << number) | ((1 << number) - 1)) & U32
        elif op == ">>":
            if number >= 32:
                raise _Unknown
            val, known = val >> number, (known >> number) | (~(U32 >> number) & U32)
        else:  # "@"
            if known != U32:
                raise _Unknown
            if at + val > U32:
                return False
            at += val
            pos = number
            if at + 4 > U32 or pkt.len < at + 4 or pos > pkt.len - at - 4:
                return False
            val, known = pkt.read(at + pos)
    lo, hi = val, val | (~known & U32)  # every possible value lies in [lo, hi]
    if any(a <= val <= b for a, b in t.values) and known == U32:
        return True
    if known == U32 or all(b < lo or a > hi for a, b in t.values):
        return False
    if any(a <= lo and hi <= b for a, b in t.values):
        return True
    raise _Unknown


@dataclass(frozen=True, slots=True)
class U32Match(Match):
    name: ClassVar[str] = "u32"
    tests: tuple[U32Test, ...]
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        pkt = PacketBytes(skb, par.fragoff)
        unknown = False
        for t in self.tests:
            try:
                if not _test(t, pkt):
                    return self.invert
            except _Unknown:
                unknown = True
        if unknown:
            return Uncertain("u32 reads bits the packet description does not give (DF/MF, checksums, sequence "
                             "numbers, TCP data offset or payload)")
        return not self.invert

    def render(self) -> str:
        parts = []
        for t in self.tests:
            loc = "".join(f"{op}{n:#x}" if op else f"{n:#x}" for op, n in t.location)
            vals = ",".join(f"{a:#x}" if a == b else f"{a:#x}:{b:#x}" for a, b in t.values)
            parts.append(f"{loc}={vals}")
        return f'-m u32 {"! " if self.invert else ""}--u32 "{"&&".join(parts)}"'


def parse_u32_tests(text: str, ctx: ParseCtx) -> tuple[U32Test, ...]:
    """libxt_u32 u32_parse(): ``LOC=VALUES[&&LOC=VALUES...]``."""
    tokens: list[str] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = TOKEN_RE.match(stripped, pos)
        if not m:
            raise ctx.error(f"u32: unexpected text at {stripped[pos:]!r} in {text!r}")
        tokens.append(m.group(1))
        pos = m.end()
    tests: list[U32Test] = []
    i = 0

    def number() -> int:
        nonlocal i
        if i >= len(tokens) or not tokens[i][0].isdigit():
            raise ctx.error(f"u32: expected a number in {text!r}")
        value = int(tokens[i], 0) if not (tokens[i].startswith("0") and tokens[i][1:].isdigit()) else int(tokens[i], 8)
        if value > U32:
            raise ctx.error(f"u32: number {tokens[i]} does not fit 32 bits")
        i += 1
        return value

    while True:
        location = [("", number())]
        while i < len(tokens) and tokens[i] in OPS:
            op = tokens[i]
            i += 1
            location.append((op, number()))
        if i >= len(tokens) or tokens[i] != "=":
            raise ctx.error(f"u32: expected '=' in {text!r}")
        i += 1
        values = []
        while True:
            a = number()
            b = a
            if i < len(tokens) and tokens[i] == ":":
                i += 1
                b = number()
            values.append((a, b))
            if i < len(tokens) and tokens[i] == ",":
                i += 1
                continue
            break
        if len(location) > MAXSIZE + 1 or len(values) > MAXSIZE + 1:
            raise ctx.error(f"u32: too many operators or values in {text!r}")
        tests.append(U32Test(tuple(location), tuple(values)))
        if i >= len(tokens):
            break
        if tokens[i] != "&&":
            raise ctx.error(f"u32: expected '&&' or the end in {text!r}")
        i += 1
    if len(tests) > MAXSIZE + 1:
        raise ctx.error(f"u32: too many tests in {text!r}")
    return tuple(tests)


@register_match("u32", {"--u32": 1})
def parse_u32(opts: Sequence[Opt], ctx: ParseCtx) -> U32Match:
    if not opts:
        raise ctx.error("u32: option \"--u32\" must be specified")
    o = opts[-1]
    return U32Match(parse_u32_tests(o.args[0], ctx), o.invert)
