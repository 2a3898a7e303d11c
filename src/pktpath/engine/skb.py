"""The packet in flight (``struct sk_buff`` as far as netfilter sees it) and the
per-hook parameters a match or target gets (``struct xt_action_param``).

Unlike the model, an ``Skb`` is mutable: targets such as MARK, DNAT or TTL rewrite it in
place, as the kernel does.  Each walk starts from a fresh ``Skb`` built from the frozen
``Packet`` given by the user, so no state leaks between walks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pktpath.engine.conntrack import Conn
    from pktpath.engine.host import Host

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136
PORT_PROTOS = frozenset({IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_UDPLITE, 33})

PROTO_NAMES = {
    "all": 0, "ip": 0, "icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17,
    "ipv6": 41, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ospf": 89,
    "ipip": 94, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136, "dccp": 33,
    "mh": 135,
}
PROTO_BY_NUMBER = {v: k for k, v in reversed(PROTO_NAMES.items()) if k not in ("ip", "all", "icmpv6")}

# TCP flag bits as in the TCP header byte 13.
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = 1, 2, 4, 8, 16, 32, 64, 128
TCP_FLAG_NAMES = {
    "FIN": TCP_FIN, "SYN": TCP_SYN, "RST": TCP_RST, "PSH": TCP_PSH,
    "ACK": TCP_ACK, "URG": TCP_URG, "ECE": TCP_ECE, "CWR": TCP_CWR,
}


def proto_name(proto: int) -> str:
    return PROTO_BY_NUMBER.get(proto, str(proto))


class Hook(enum.Enum):
    """The five IPv4 netfilter hooks (enum nf_inet_hooks)."""

    PREROUTING = 0
    INPUT = 1
    FORWARD = 2
    OUTPUT = 3
    POSTROUTING = 4


class CtInfo(enum.IntEnum):
    """enum ip_conntrack_info."""

    ESTABLISHED = 0
    RELATED = 1
    NEW = 2
    ESTABLISHED_REPLY = 3
    RELATED_REPLY = 4
    UNTRACKED = 7


@dataclass(slots=True)
class Socket:
    """The local socket that sends a ``--local`` packet (owner match, uid routing)."""

    uid: int = 0
    gid: int = 0


@dataclass(slots=True)
class Skb:
    src: int
    dst: int
    proto: int
    sport: int | None = None
    dport: int | None = None
    tcp_flags: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_inner: tuple[int, int, int, int, int] | None = None  # the header an ICMP error quotes
    ttl: int = 64
    length: int = 0
    tos: int = 0
    ident: int = 0
    frag_off: int = 0  # in 8-byte units; non-zero for a non-first fragment
    mark: int = 0
    mac_src: str | None = None
    mac_dst: str | None = None
    pkt_type: str = "host"  # host broadcast multicast otherhost (PACKET_*)
    iif: str | None = None  # the device the packet arrived on (skb->dev on input)
    sk: Socket | None = None
    # Connection tracking: nf_ct_get(skb) -> (ct, ctinfo).  ct None with ctinfo UNTRACKED
    # is the untracked state; ct None with ctinfo None is "conntrack has not seen it".
    ct: Conn | None = None
    ctinfo: CtInfo | None = None
    ct_zone: int = 0  # set by CT --zone before conntrack runs
    rejected_with: str | None = None  # set by REJECT
    nf_trace: bool = True
    route: object = None  # the routing decision attached to the packet (skb_dst)
    notes: list[str] = field(default_factory=list)
    uncertain: set[str] = field(default_factory=set)  # header fields the kernel sets at random

    def copy(self) -> Skb:
        return Skb(**{f: getattr(self, f) for f in self.__slots__})


@dataclass(slots=True)
class XtParams:
    """What ipt_do_table() hands each match and target (struct xt_action_param)."""

    hook: Hook
    table: str
    in_dev: str | None
    out_dev: str | None
    host: Host
    fragoff: int = 0
