"""Build the test packet with scapy, and read back IPv4 headers seen on sockets.

The packet carries a marker in its IP ID so kernel log lines and captured frames can be
told apart from everything else.  NAT never changes the ID or the total length, so
(ID, LEN) identifies our packet at every hook.  Checksums are always computed: a bad
L4 checksum makes conntrack call the packet INVALID.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from pktpath.sandbox.spec import L4_HEADER, PacketSpec

ECHO_ID = 119  # ICMP echo identifier/sequence, as the recorded cases use
ECHO_SEQ = 1
TCP_SEQ = 1000
TCP_WINDOW = 8192


def build_ip(spec: PacketSpec, src: str, ident: int) -> bytes:
    """The IP datagram: exact TTL, ID and total length, no DF, zero padding."""
    # scapy is imported on use: it is slow to import and only a test dependency.
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.packet import Packet, Raw

    l4: Packet
    if spec.proto == 6:
        l4 = TCP(sport=spec.sport, dport=spec.dport, flags=spec.tcp_flags, seq=TCP_SEQ,
                 ack=1 if "A" in spec.tcp_flags else 0, window=TCP_WINDOW)
    elif spec.proto == 17:
        l4 = UDP(sport=spec.sport, dport=spec.dport)
    elif spec.proto == 1:
        if spec.icmp_type in (0, 8):
            l4 = ICMP(type=spec.icmp_type, code=spec.icmp_code, id=ECHO_ID, seq=ECHO_SEQ)
        else:
            l4 = ICMP(type=spec.icmp_type, code=spec.icmp_code)
    else:
        l4 = Raw(b"")
    pad = spec.length - 20 - L4_HEADER.get(spec.proto, 0)
    pkt = IP(src=src, dst=spec.dst, ttl=spec.ttl, id=ident, flags=0, tos=0, proto=spec.proto) / l4
    if pad:
        pkt = pkt / Raw(b"\x00" * pad)
    data = bytes(pkt)
    assert len(data) == spec.length, (len(data), spec.length)
    return data


def build_frame(spec: PacketSpec, dst_mac: str, src_mac: str, ident: int) -> bytes:
    """The Ethernet frame injected on the peer side of ``--iif``."""
    from scapy.layers.l2 import Ether

    assert spec.src is not None
    return bytes(Ether(dst=dst_mac, src=src_mac, type=0x0800)) + build_ip(spec, spec.src, ident)


@dataclass(frozen=True)
class IPv4Header:
    """The fields of a received IPv4 packet the sandbox looks at."""

    src: str
    dst: str
    id: int
    ttl: int
    proto: int
    len: int
    sport: int | None
    dport: int | None
    tcp_flags: str | None
    icmp: tuple[int, int] | None

    def summary(self) -> dict[str, object]:
        d: dict[str, object] = {"src": self.src, "dst": self.dst, "id": self.id, "ttl": self.ttl,
                                "proto": self.proto, "len": self.len}
        if self.sport is not None:
            d.update(sport=self.sport, dport=self.dport)
        if self.tcp_flags is not None:
            d["flags"] = self.tcp_flags
        if self.icmp is not None:
            d.update(type=self.icmp[0], code=self.icmp[1])
        return d


def parse_ipv4(data: bytes) -> IPv4Header | None:
    """Parse an IPv4 datagram (no link header); None if it is not one."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    total, ident = struct.unpack("!HH", data[2:6])
    ttl, proto = data[8], data[9]
    src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
    l4 = data[ihl:]
    sport = dport = None
    flags = None
    icmp = None
    if proto in (6, 17) and len(l4) >= 4:
        sport, dport = struct.unpack("!HH", l4[:4])
        if proto == 6 and len(l4) >= 14:
            flags = "".join(c for bit, c in zip(range(8), "FSRPAUEC", strict=True) if l4[13] & (1 << bit))
    elif proto == 1 and len(l4) >= 2:
        icmp = (l4[0], l4[1])
    return IPv4Header(src, dst, ident, ttl, proto, total, sport, dport, flags, icmp)
