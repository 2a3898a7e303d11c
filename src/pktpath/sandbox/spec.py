"""The packet to send, from exactly the ``pktpath trace`` arguments (trace-json.md)."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass

from pktpath.sandbox.errors import SandboxError

PROTOS = {"tcp": 6, "udp": 17, "icmp": 1}
TCP_FLAG_LETTERS = {"FIN": "F", "SYN": "S", "RST": "R", "PSH": "P", "ACK": "A", "URG": "U",
                    "ECE": "E", "CWR": "C"}
ICMP_NAMES = {"echo-reply": (0, 0), "destination-unreachable": (3, 0), "echo-request": (8, 0),
              "time-exceeded": (11, 0), "port-unreachable": (3, 3), "host-unreachable": (3, 1)}
# Header bytes after the IP header: TCP without options, UDP, ICMP (type..seq).
L4_HEADER = {6: 20, 17: 8, 1: 8}
DEFAULT_SPORT = 40000
DEFAULT_DPORT = 80


@dataclass(frozen=True)
class PacketSpec:
    """What to send and from where; ports are None for protocols without ports."""

    iif: str | None
    src: str | None
    dst: str
    proto: int
    sport: int | None
    dport: int | None
    icmp_type: int
    icmp_code: int
    tcp_flags: str  # scapy letters, e.g. "SA"
    mark: int
    ttl: int
    length: int
    mac_src: str | None
    uid: int | None

    @property
    def local(self) -> bool:
        return self.iif is None

    @property
    def proto_name(self) -> str:
        return {v: k for k, v in PROTOS.items()}.get(self.proto, str(self.proto))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SandboxError(f"bad trace arguments: {message}")


def _parser() -> _Parser:
    p = _Parser(prog="pktpath trace", add_help=False)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--iif")
    where.add_argument("--local", action="store_true")
    p.add_argument("--src")
    p.add_argument("--dst", required=True)
    p.add_argument("--proto", default="tcp")
    p.add_argument("--sport", type=int)
    p.add_argument("--dport", type=int)
    p.add_argument("--icmp-type")
    p.add_argument("--tcp-flags", default="SYN")
    p.add_argument("--mark", type=lambda v: int(v, 0), default=0)
    p.add_argument("--ttl", type=int, default=64)
    p.add_argument("--length", type=int)
    p.add_argument("--mac-src")
    p.add_argument("--uid", type=int)
    p.add_argument("--format")  # accepted and ignored: the sandbox always returns data
    return p


def _proto(text: str) -> int:
    if text.lower() in PROTOS:
        return PROTOS[text.lower()]
    if text.isdigit() and 0 < int(text) < 256:
        return int(text)
    raise SandboxError(f"bad --proto {text!r}")


def _icmp_type(text: str | None) -> tuple[int, int]:
    if text is None:
        return 8, 0
    if text in ICMP_NAMES:
        return ICMP_NAMES[text]
    t, _, c = text.partition("/")
    try:
        return int(t), int(c) if c else 0
    except ValueError:
        raise SandboxError(f"bad --icmp-type {text!r}") from None


def _tcp_flags(text: str) -> str:
    letters = ""
    for name in filter(None, text.upper().split(",")):
        if name == "NONE":
            continue
        if name not in TCP_FLAG_LETTERS:
            raise SandboxError(f"bad --tcp-flags {text!r}")
        letters += TCP_FLAG_LETTERS[name]
    return letters


def parse_args(args: list[str]) -> PacketSpec:
    ns = _parser().parse_args(args)
    for addr in (ns.src, ns.dst):
        if addr is not None:
            try:
                ipaddress.IPv4Address(addr)
            except ValueError:
                raise SandboxError(f"not an IPv4 address: {addr!r}") from None
    proto = _proto(ns.proto)
    ported = proto in (6, 17)
    icmp_type, icmp_code = _icmp_type(ns.icmp_type) if proto == 1 else (0, 0)
    minimum = 20 + L4_HEADER.get(proto, 0)
    length = ns.length if ns.length is not None else minimum
    if length < minimum or length > 65535:
        raise SandboxError(f"--length {length}: must be between {minimum} and 65535 for this protocol")
    if ns.iif is not None and ns.src is None:
        raise SandboxError("--iif needs --src")
    return PacketSpec(
        iif=ns.iif, src=ns.src, dst=ns.dst, proto=proto,
        sport=(ns.sport if ns.sport is not None else DEFAULT_SPORT) if ported else None,
        dport=(ns.dport if ns.dport is not None else DEFAULT_DPORT) if ported else None,
        icmp_type=icmp_type, icmp_code=icmp_code,
        tcp_flags=_tcp_flags(ns.tcp_flags) if proto == 6 else "",
        mark=ns.mark, ttl=ns.ttl, length=length, mac_src=ns.mac_src, uid=ns.uid,
    )
