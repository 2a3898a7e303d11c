"""The packet options shared by ``trace``, ``flow`` and ``--batch``: text -> ``Packet``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from pktpath.engine.skb import IPPROTO_ICMP, PORT_PROTOS, PROTO_NAMES, TCP_FLAG_NAMES
from pktpath.errors import UsageError
from pktpath.model.addr import ip_to_int
from pktpath.model.net import NetState
from pktpath.model.packet import Packet

DEFAULT_SPORT = 40000
DEFAULT_DPORT = 80


def parse_number(text: str | int | None, what: str, hi: int = 0xFFFFFFFF) -> int | None:
    if text is None:
        return None
    if isinstance(text, int):
        value = text
    else:
        try:
            value = int(text, 0)
        except ValueError:
            raise UsageError(f"{what}: expected a number, got {text!r}") from None
    if not 0 <= value <= hi:
        raise UsageError(f"{what}: {value} is out of range 0..{hi}")
    return value


def parse_addr(text: str, what: str) -> int:
    try:
        return ip_to_int(text)
    except ValueError:
        raise UsageError(f"{what}: expected an IPv4 address, got {text!r}") from None


def parse_proto(text: str) -> int:
    low = text.lower()
    if low in PROTO_NAMES:
        return PROTO_NAMES[low]
    value = parse_number(text, "--proto", 255)
    assert value is not None
    return value


def parse_tcp_flags(text: str) -> int:
    flags = 0
    if text.strip().upper() in ("NONE", ""):
        return 0
    for name in text.split(","):
        name = name.strip().upper()
        if name not in TCP_FLAG_NAMES:
            raise UsageError(f"--tcp-flags: unknown flag {name!r}, expected SYN,ACK,FIN,RST,PSH,URG,ECE,CWR")
        flags |= TCP_FLAG_NAMES[name]
    return flags


def build_packet(net: NetState, *, iif: str | None, local: bool, src: str | None, dst: str, proto: str,
                 sport: str | int | None, dport: str | int | None, icmp_type: str | None,
                 tcp_flags: str | None, mark: str | int | None, ttl: str | int | None,
                 length: str | int | None, mac_src: str | None, uid: str | int | None,
                 icmp_id: str | int | None = None) -> Packet:
    if local == (iif is not None):
        raise UsageError("give exactly one of --iif IFACE (arrives from the wire) or --local (sent by this host)")
    if iif is not None and net.link(iif) is None:
        known = ", ".join(link.name for link in net.links) or "none: the snapshot has no ip-addr.json (ip -j addr show)"
        raise UsageError(f"--iif {iif}: no such interface in the snapshot (interfaces: {known})")
    if not local and src is None:
        raise UsageError("--src is required for a packet arriving with --iif")
    p = parse_proto(proto)
    kw: dict[str, object] = {}
    if p in PORT_PROTOS:
        kw["sport"] = parse_number(sport, "--sport", 65535) if sport is not None else DEFAULT_SPORT
        kw["dport"] = parse_number(dport, "--dport", 65535) if dport is not None else DEFAULT_DPORT
    if p == IPPROTO_ICMP:
        t, c = 8, 0
        if icmp_type:
            a, _, b = icmp_type.partition("/")
            t = parse_number(a, "--icmp-type", 255) or 0
            c = parse_number(b, "--icmp-type code", 255) or 0 if b else 0
        kw["icmp_type"], kw["icmp_code"] = t, c
        kw["icmp_id"] = parse_number(icmp_id, "--icmp-id", 65535) if icmp_id is not None else 0
    flags = parse_tcp_flags(tcp_flags) if tcp_flags else 0x02
    return Packet(
        dst=parse_addr(dst, "--dst"), src=parse_addr(src, "--src") if src else None, iif=iif, proto=p,
        tcp_flags=flags, mark=parse_number(mark, "--mark") or 0,
        ttl=parse_number(ttl, "--ttl", 255) or 0 if ttl is not None else 64,
        length=parse_number(length, "--length", 65535), mac_src=mac_src.lower() if mac_src else None,
        uid=parse_number(uid, "--uid") or 0, **kw)  # type: ignore[arg-type]


F = TypeVar("F", bound=Callable[..., object])

PACKET_OPTIONS = (
    click.option("--iif", help="the packet arrives from the wire on this interface"),
    click.option("--local", is_flag=True, help="the packet is sent by a local process"),
    click.option("--src", help="source address (optional with --local: the kernel chooses)"),
    click.option("--dst", help="destination address"),
    click.option("--proto", help="tcp, udp, icmp or a protocol number (default tcp)"),
    click.option("--sport", help="source port (default 40000)"),
    click.option("--dport", help="destination port (default 80)"),
    click.option("--icmp-type", help="ICMP TYPE[/CODE] (default 8/0, echo request)"),
    click.option("--tcp-flags", help="TCP flags, comma separated (default SYN)"),
    click.option("--mark", help="packet mark (socket mark for --local)"),
    click.option("--ttl", help="IP TTL (default 64)"),
    click.option("--length", help="IP total length"),
    click.option("--mac-src", help="Ethernet source address of an arriving packet"),
    click.option("--uid", help="uid of the sending process (--local)"),
)


def packet_options(fn: F) -> F:
    """The options that describe one packet, shared by ``trace`` and ``verify``."""
    for option in reversed(PACKET_OPTIONS):
        fn = option(fn)
    return fn
