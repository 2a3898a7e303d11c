"""The packet a user asks about (frozen): where it enters and its header fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Packet:
    dst: int
    src: int | None = None  # None: a local sender lets the kernel choose
    iif: str | None = None  # None: sent by a local process (OUTPUT path)
    proto: int = 6
    sport: int | None = None
    dport: int | None = None
    tcp_flags: int = 0x02
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    mark: int = 0
    ttl: int = 64
    length: int | None = None
    tos: int = 0
    mac_src: str | None = None
    uid: int = 0
    gid: int = 0
    ident: int = 0
    #: for an ICMP error: the header it quotes (src, dst, proto, sport, dport)
    icmp_inner: tuple[int, int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.proto in (6, 17, 132, 136, 33) and (self.sport is None or self.dport is None):
            raise ValueError("a TCP/UDP/SCTP/DCCP/UDP-Lite packet needs sport and dport")

    @property
    def local(self) -> bool:
        return self.iif is None
