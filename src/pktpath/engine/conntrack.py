"""Connection tracking (net/netfilter/nf_conntrack_core.c, nf_conntrack_proto_*.c).

Theory of operation
-------------------
* A connection (``Conn``) holds two tuples: ORIGINAL (as the first packet was seen) and
  REPLY (what an answer looks like; NAT rewrites it).  A packet belongs to a connection
  when its tuple equals one of them; which one gives the direction.
* ``resolve()`` mirrors ``nf_conntrack_in()``: it runs at PREROUTING/OUTPUT priority -200,
  once per packet (a packet that already carries a ct -- looped back, or untracked by
  NOTRACK -- is left alone) and fixes ``ctinfo`` for every later match.
* A new connection is only *confirmed* (inserted in the table) at POSTROUTING/INPUT
  (``__nf_conntrack_confirm``); until then a second packet would not find it.
* The protocol trackers decide what can start a connection: a TCP SYN (or, with
  ``nf_conntrack_tcp_loose``, any ACK-only segment), any UDP datagram, an ICMP echo /
  timestamp / info / address-mask request.  Anything else without an entry is INVALID.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pktpath.engine.skb import (
    IPPROTO_ICMP,
    IPPROTO_TCP,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TCP_URG,
    CtInfo,
    Skb,
)
from pktpath.model.conntrack import CtEntry

# IPS_* status bits (include/uapi/linux/netfilter/nf_conntrack_common.h).
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_SRC_NAT_DONE = 1 << 7
IPS_DST_NAT_DONE = 1 << 8
IPS_DYING = 1 << 9
IPS_UNTRACKED = 1 << 12

STATUS_NAMES = {
    "EXPECTED": IPS_EXPECTED, "SEEN_REPLY": IPS_SEEN_REPLY, "ASSURED": IPS_ASSURED,
    "CONFIRMED": IPS_CONFIRMED,
}

# ICMP types that open a connection and the answer each expects (nf_conntrack_proto_icmp.c).
ICMP_REQUEST_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})

# tcp_valid_flags[] in nf_conntrack_proto_tcp.c: the flag combinations tcp_error() lets through.
_F, _S, _R, _P, _A, _U = TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG
TCP_VALID_FLAGS = frozenset({
    _S, _S | _U, _S | _A, _R, _R | _A, _R | _A | _P, _F | _A, _F | _A | _U, _A, _A | _U,
    _A | _P, _A | _P | _U, _F | _A | _P, _F | _A | _P | _U,
})


@dataclass(frozen=True, slots=True)
class Tuple:
    """A conntrack tuple.  For ICMP, sport is the identifier and dport holds type<<8|code."""

    src: int
    dst: int
    proto: int
    sport: int
    dport: int

    def inverted(self) -> Tuple:
        if self.proto == IPPROTO_ICMP:
            icmp_type = self.dport >> 8
            reply = ICMP_REQUEST_REPLY.get(icmp_type, icmp_type)
            return Tuple(self.dst, self.src, self.proto, self.sport, reply << 8)
        return Tuple(self.dst, self.src, self.proto, self.dport, self.sport)


def skb_tuple(skb: Skb) -> Tuple:
    if skb.proto == IPPROTO_ICMP:
        return Tuple(skb.src, skb.dst, skb.proto, skb.icmp_id or 0,
                     ((skb.icmp_type or 0) << 8) | (skb.icmp_code or 0))
    return Tuple(skb.src, skb.dst, skb.proto, skb.sport or 0, skb.dport or 0)


@dataclass(slots=True)
class Conn:
    """struct nf_conn: both tuples, status, mark, zone, TCP state and the NAT bindings made."""

    orig: Tuple
    reply: Tuple
    status: int = 0
    mark: int = 0
    zone: int = 0
    tcp_state: str | None = None
    helper: str | None = None
    nat_done_src: bool = False  # nf_nat_initialized(ct, NF_NAT_MANIP_SRC)
    nat_done_dst: bool = False
    origin: str = "new"  # "new" (this walk) or where it was loaded from
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ConntrackTable:
    """The confirmed connections of the namespace (``conntrack -L``)."""

    conns: list[Conn] = field(default_factory=list)

    def clone(self) -> ConntrackTable:
        """An independent copy: each explored path evolves its own table."""
        return ConntrackTable([replace(c, extra=dict(c.extra)) for c in self.conns])

    def find(self, t: Tuple, zone: int = 0) -> tuple[Conn, bool] | None:
        """The connection that owns this tuple and whether it is the reply direction."""
        for c in self.conns:
            if c.zone != zone:
                continue
            if c.orig == t:
                return c, False
            if c.reply == t:
                return c, True
        return None

    def clash(self, t: Tuple, exclude: Conn | None = None) -> bool:
        """nf_nat_used_tuple(): is this reply tuple taken by another connection?"""
        return any(c is not exclude and (c.reply == t or c.orig == t) for c in self.conns)

    def kill(self, ct: Conn) -> None:
        """nf_ct_kill(): the entry leaves the table (the packet keeps its reference)."""
        ct.status |= IPS_DYING
        self.conns = [c for c in self.conns if c is not ct]

    def confirm(self, ct: Conn) -> None:
        if ct.status & IPS_DYING:
            return
        if not ct.status & IPS_CONFIRMED:
            ct.status |= IPS_CONFIRMED
            self.conns.append(ct)


def find_related(table: ConntrackTable, skb: Skb) -> tuple[Conn, CtInfo] | None:
    """icmp_error_message(): the connection an ICMP error quotes, and RELATED or RELATED_REPLY.

    The quoted header is inverted and looked up; found as the REPLY tuple means the quoted
    packet went in the original direction, so the error travels in the reply direction."""
    if skb.proto != IPPROTO_ICMP or skb.icmp_type not in ICMP_ERRORS or skb.icmp_inner is None:
        return None
    src, dst, proto, sport, dport = skb.icmp_inner
    quoted = Tuple(src, dst, proto, sport, dport)
    found = table.find(quoted.inverted(), skb.ct_zone)
    if found is None:
        return None
    ct, is_reply = found
    return ct, CtInfo.RELATED_REPLY if is_reply else CtInfo.RELATED


def new_state_for(skb: Skb, tcp_loose: bool) -> tuple[bool, str | None, str]:
    """Can this packet open a connection?  -> (ok, tcp_state, why-not).

    Mirrors tcp_error()/tcp_new() and icmp_error()/icmp_new()."""
    if skb.proto == IPPROTO_TCP:
        flags = skb.tcp_flags & 0x3F
        if flags not in TCP_VALID_FLAGS:
            return False, None, f"TCP flags {flags:#x} are not a valid combination (tcp_error)"
        if flags & TCP_RST:
            return False, None, "a RST cannot open a connection"
        if flags & TCP_SYN:
            if flags & TCP_ACK:
                return False, None, "a SYN,ACK without a connection is INVALID"
            return True, "SYN_SENT", ""
        if flags & TCP_FIN:
            return False, None, "a FIN without a connection is INVALID"
        if flags & TCP_ACK:
            if tcp_loose:
                return True, "ESTABLISHED", "picked up mid-stream (nf_conntrack_tcp_loose=1)"
            return False, None, "an ACK without a connection is INVALID with nf_conntrack_tcp_loose=0"
        return False, None, "a TCP segment without flags is INVALID"
    if skb.proto == IPPROTO_ICMP:
        icmp_type = skb.icmp_type or 0
        if icmp_type in ICMP_REQUEST_REPLY:
            return True, None, ""
        if icmp_type in ICMP_ERRORS:
            return False, None, "an ICMP error that quotes no known connection is INVALID"
        return False, None, f"ICMP type {icmp_type} cannot open a connection"
    return True, None, ""


def attach_new(skb: Skb, zone: int = 0) -> Conn:
    """Make the unconfirmed connection a NEW packet creates (init_conntrack)."""
    t = skb_tuple(skb)
    ct = Conn(orig=t, reply=t.inverted(), zone=zone)
    skb.ct, skb.ctinfo = ct, CtInfo.NEW
    return ct


# ---------------------------------------------------------------- TCP state machine
# tcp_conntracks[dir][index][state] from nf_conntrack_proto_tcp.c.  "IV": invalid,
# "IG": ignored (passes, state unchanged).
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
              "TIME_WAIT", "CLOSE", "SYN_SENT2")
_NO, _SS, _SR, _ES, _FW, _CW, _LA, _TW, _CL, _S2, _IV, _IG = (
    "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE",
    "SYN_SENT2", "IV", "IG")
TCP_TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "ORIGINAL": {
        "syn": (_SS, _SS, _IG, _IG, _IG, _IG, _IG, _SS, _SS, _S2),
        "synack": (_IV, _IV, _IG, _IG, _IG, _IG, _IG, _IG, _IG, _SR),
        "fin": (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),
        "ack": (_ES, _IV, _ES, _ES, _CW, _CW, _TW, _TW, _CL, _IV),
        "rst": (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),
        "none": (_IV,) * 10,
    },
    "REPLY": {
        "syn": (_IV, _S2, _IV, _IV, _IV, _IV, _IV, _IV, _IV, _S2),
        "synack": (_IV, _SR, _IG, _IG, _IG, _IG, _IG, _IG, _IG, _SR),
        "fin": (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),
        "ack": (_IV, _IG, _SR, _ES, _CW, _CW, _TW, _TW, _CL, _IG),
        "rst": (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),
        "none": (_IV,) * 10,
    },
}


def tcp_index(flags: int) -> str:
    """get_conntrack_index()."""
    if flags & TCP_RST:
        return "rst"
    if flags & TCP_SYN:
        return "synack" if flags & TCP_ACK else "syn"
    if flags & TCP_FIN:
        return "fin"
    if flags & TCP_ACK:
        return "ack"
    return "none"


def tcp_packet(ct: Conn, skb: Skb, reply: bool, table: ConntrackTable) -> tuple[bool, str]:
    """tcp_packet() for a packet of a known connection -> (valid, what happened).

    Window tracking is not modelled: every segment is taken as in window."""
    flags = skb.tcp_flags & 0x3F
    if flags not in TCP_VALID_FLAGS:
        return False, f"TCP flags {flags:#x} are not a valid combination (tcp_error)"
    old = ct.tcp_state or "NONE"
    index = tcp_index(flags)
    new = TCP_TRANSITIONS["REPLY" if reply else "ORIGINAL"][index][TCP_STATES.index(old)]
    if new == _IV:
        return False, f"a {index.upper()} in state {old} is INVALID for conntrack"
    if new == _IG:
        return True, f"{index.upper()} in state {old}: ignored by the state machine"
    ct.tcp_state = new
    if index == "rst" and not ct.status & IPS_SEEN_REPLY and reply:
        table.kill(ct)
        return True, "a RST answering the first packet: the connection is deleted at once"
    if (reply or ct.status & IPS_SEEN_REPLY) and old in ("SYN_RECV", "ESTABLISHED") and new == "ESTABLISHED":
        ct.status |= IPS_ASSURED
    return True, f"TCP {old} -> {new}"


def entry_json(ct: Conn) -> dict[str, object]:
    """One ``conntrack -L`` entry as flow-json.md lists it."""
    from pktpath.model.addr import int_to_ip

    def side(t: Tuple) -> dict[str, object]:
        if t.proto == IPPROTO_ICMP:
            return {"src": int_to_ip(t.src), "dst": int_to_ip(t.dst), "type": t.dport >> 8,
                    "code": t.dport & 0xFF, "id": t.sport}
        return {"src": int_to_ip(t.src), "dst": int_to_ip(t.dst), "sport": t.sport, "dport": t.dport}

    from pktpath.engine.skb import proto_name

    flags = []
    if not ct.status & IPS_SEEN_REPLY:
        flags.append("UNREPLIED")
    if ct.status & IPS_ASSURED:
        flags.append("ASSURED")
    return {"proto": proto_name(ct.orig.proto), "state": ct.tcp_state if ct.orig.proto == IPPROTO_TCP else None,
            "orig": side(ct.orig), "reply": side(ct.reply), "flags": sorted(flags), "mark": ct.mark,
            "zone": ct.zone}


def from_entry(e: CtEntry) -> Conn:
    """A confirmed connection loaded from ``conntrack -L``: NAT bindings are read off its tuples."""
    orig = Tuple(e.orig.src, e.orig.dst, e.proto, e.orig.sport, e.orig.dport)
    reply = Tuple(e.reply.src, e.reply.dst, e.proto, e.reply.sport, e.reply.dport)
    status = IPS_CONFIRMED | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE
    if "UNREPLIED" not in e.flags:
        status |= IPS_SEEN_REPLY
    if "ASSURED" in e.flags:
        status |= IPS_ASSURED
    ports = e.proto != IPPROTO_ICMP
    if (reply.src, reply.sport if ports else 0) != (orig.dst, orig.dport if ports else 0):
        status |= IPS_DST_NAT
    if (reply.dst, reply.dport if ports else 0) != (orig.src, orig.sport if ports else 0):
        status |= IPS_SRC_NAT
    return Conn(orig, reply, status, e.mark, e.zone, e.state, nat_done_src=True, nat_done_dst=True,
                origin=str(e.origin) if e.origin else "conntrack.txt")
