"""NAT bindings (net/netfilter/nf_nat_core.c): ``nf_nat_setup_info()`` and ``nf_nat_packet()``.

Theory of operation
-------------------
* A binding is made once per connection and manip type (SRC at POSTROUTING/INPUT, DST at
  PREROUTING/OUTPUT): the first NAT target that runs rewrites the connection's REPLY
  tuple and marks the manip type initialised; if the nat chains end without one, a null
  binding marks it initialised with nothing changed.  Later packets never see the nat
  table again.
* The packet itself is rewritten by ``nat_packet()`` right after the nat hook, from the
  tuples: for the original direction the manip type's side of the inverted reply tuple.
* The address of a range is chosen as ``find_best_ips_proto()`` does: a Jenkins hash of
  the source (and destination) address, so the choice is deterministic.  A port is kept
  when it lies in the range and no other connection uses the tuple; otherwise DNAT takes
  the first port of the range and SNAT a random one (reported as uncertain).
"""

from __future__ import annotations

from dataclasses import replace

from pktpath.engine.conntrack import (
    IPS_DST_NAT,
    IPS_DST_NAT_DONE,
    IPS_SRC_NAT,
    IPS_SRC_NAT_DONE,
    Conn,
    ConntrackTable,
    Tuple,
)
from pktpath.engine.skb import IPPROTO_ICMP, PORT_PROTOS, CtInfo, Hook, Skb
from pktpath.model.nat import NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NatRange

MASK32 = 0xFFFFFFFF
RANDOM_PORT = {"sport": "source port", "dport": "destination port"}  # note prefixes, by packet field


def hook_manip(hook: Hook) -> str:
    """HOOK2MANIP(): DST where packets enter (PREROUTING, OUTPUT), SRC where they leave."""
    return NF_NAT_MANIP_DST if hook in (Hook.PREROUTING, Hook.OUTPUT) else NF_NAT_MANIP_SRC


def initialized(ct: Conn, manip: str) -> bool:
    return ct.nat_done_src if manip == NF_NAT_MANIP_SRC else ct.nat_done_dst


# ------------------------------------------------------------------ jhash (include/linux/jhash.h)
def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & MASK32


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & MASK32; a ^= _rol32(c, 4); c = (c + b) & MASK32  # noqa: E702
    b = (b - a) & MASK32; b ^= _rol32(a, 6); a = (a + c) & MASK32  # noqa: E702
    c = (c - b) & MASK32; c ^= _rol32(b, 8); b = (b + a) & MASK32  # noqa: E702
    a = (a - c) & MASK32; a ^= _rol32(c, 16); c = (c + b) & MASK32  # noqa: E702
    b = (b - a) & MASK32; b ^= _rol32(a, 19); a = (a + c) & MASK32  # noqa: E702
    c = (c - b) & MASK32; c ^= _rol32(b, 4); b = (b + a) & MASK32  # noqa: E702
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b; c = (c - _rol32(b, 14)) & MASK32  # noqa: E702
    a ^= c; a = (a - _rol32(c, 11)) & MASK32  # noqa: E702
    b ^= a; b = (b - _rol32(a, 25)) & MASK32  # noqa: E702
    c ^= b; c = (c - _rol32(b, 16)) & MASK32  # noqa: E702
    a ^= c; a = (a - _rol32(c, 4)) & MASK32  # noqa: E702
    b ^= a; b = (b - _rol32(a, 14)) & MASK32  # noqa: E702
    c ^= b; c = (c - _rol32(b, 24)) & MASK32  # noqa: E702
    return c


def jhash2(words: list[int], initval: int) -> int:
    a = b = c = (0xDEADBEEF + (len(words) << 2) + initval) & MASK32
    k = list(words)
    while len(k) > 3:
        a, b, c = (a + k[0]) & MASK32, (b + k[1]) & MASK32, (c + k[2]) & MASK32
        a, b, c = _mix(a, b, c)
        k = k[3:]
    if not k:
        return c
    if len(k) == 3:
        c = (c + k[2]) & MASK32
    if len(k) >= 2:
        b = (b + k[1]) & MASK32
    a = (a + k[0]) & MASK32
    return _final(a, b, c)


def _wire(addr: int) -> int:
    """An IPv4 address as the little-endian CPU reads its network-order bytes."""
    return int.from_bytes(addr.to_bytes(4, "big"), "little")


def pick_address(t: Tuple, rng: NatRange, manip: str, zone: int = 0) -> int:
    """find_best_ips_proto() for IPv4."""
    assert rng.min_addr is not None and rng.max_addr is not None
    if rng.min_addr == rng.max_addr:
        return rng.min_addr
    initval = 0 if rng.persistent else (_wire(t.dst) ^ zone)
    j = jhash2([_wire(t.src), 0, 0, 0], initval)
    dist = rng.max_addr - rng.min_addr + 1
    return rng.min_addr + ((j * dist) >> 32)


# ------------------------------------------------------------------ setup and apply
def setup_info(table: ConntrackTable, ct: Conn, rng: NatRange, manip: str) -> list[str]:
    """nf_nat_setup_info(): bind the connection; returns notes on choices the kernel makes at random."""
    notes: list[str] = []
    curr = ct.reply.inverted() if ct.reply.proto != IPPROTO_ICMP else _icmp_curr(ct)
    new = curr
    if not _keep_original_source(table, ct, curr, rng, manip):
        if rng.min_addr is not None:
            addr = pick_address(curr, rng, manip, ct.zone)
            # dataclasses.replace(new, src=addr) / (new, dst=addr), without its introspection
            new = (Tuple(addr, new.dst, new.proto, new.sport, new.dport) if manip == NF_NAT_MANIP_SRC
                   else Tuple(new.src, addr, new.proto, new.sport, new.dport))
            if rng.max_addr != rng.min_addr:
                notes.append("address chosen by the kernel's hash of the source address (find_best_ips_proto)")
        if curr.proto in PORT_PROTOS or curr.proto == IPPROTO_ICMP:
            new, port_note = _pick_port(table, ct, new, rng, manip)
            if port_note:
                notes.append(port_note)
    if new != curr:
        ct.reply = new.inverted() if new.proto != IPPROTO_ICMP else _icmp_reply(new, ct)
        ct.status |= IPS_SRC_NAT if manip == NF_NAT_MANIP_SRC else IPS_DST_NAT
    if manip == NF_NAT_MANIP_SRC:
        ct.nat_done_src = True
        ct.status |= IPS_SRC_NAT_DONE
    else:
        ct.nat_done_dst = True
        ct.status |= IPS_DST_NAT_DONE
    return notes


def _keep_original_source(table: ConntrackTable, ct: Conn, curr: Tuple, rng: NatRange, manip: str) -> bool:
    """Source NAT keeps the original tuple when it already lies in the range and no other
    connection uses it (nf_in_range() and nf_nat_used_tuple() in get_unique_tuple())."""
    if manip != NF_NAT_MANIP_SRC or rng.random or rng.random_fully:
        return False
    if rng.min_addr is not None and not (rng.min_addr <= curr.src <= (rng.max_addr or rng.min_addr)):
        return False
    if rng.min_port is not None:
        if curr.proto not in PORT_PROTOS or not rng.min_port <= curr.sport <= (rng.max_port or rng.min_port):
            return False
    if not table.conns:
        return True  # nothing to clash with
    reply = curr.inverted() if curr.proto != IPPROTO_ICMP else _icmp_reply(curr, ct)
    return not table.clash(reply, ct)


def _icmp_curr(ct: Conn) -> Tuple:
    r = ct.reply
    return Tuple(r.dst, r.src, r.proto, r.sport, ct.orig.dport)


def _icmp_reply(new: Tuple, ct: Conn) -> Tuple:
    return Tuple(new.dst, new.src, new.proto, new.sport, ct.reply.dport)


def _pick_port(table: ConntrackTable, ct: Conn, t: Tuple, rng: NatRange, manip: str) -> tuple[Tuple, str]:
    key = "sport" if manip == NF_NAT_MANIP_SRC else "dport"
    if t.proto == IPPROTO_ICMP:
        key = "sport"  # the echo identifier
    port = getattr(t, key)
    reply_of = (lambda x: x.inverted()) if t.proto != IPPROTO_ICMP else (lambda x: _icmp_reply(x, ct))
    random_all = rng.random or rng.random_fully  # NF_NAT_RANGE_PROTO_RANDOM_ALL skips both shortcuts
    if rng.min_port is not None and not random_all:
        assert rng.max_port is not None
        if rng.min_port <= port <= rng.max_port and (
                rng.min_port == rng.max_port or not table.clash(reply_of(t), ct)):
            return t, ""
    elif rng.min_port is None and not random_all and not table.clash(reply_of(t), ct):
        return t, ""
    # nf_nat_l4proto_unique_tuple()
    if rng.min_port is None:
        if manip == NF_NAT_MANIP_DST:
            return t, ""
        if port < 512:
            lo, size = 1, 511
        elif port < 1024:
            lo, size = 600, 1023 - 600 + 1
        else:
            lo, size = 1024, 65535 - 1024 + 1
    else:
        assert rng.max_port is not None
        lo, size = rng.min_port, rng.max_port - rng.min_port + 1
    randomised = random_all or manip != NF_NAT_MANIP_DST
    # A random pick cannot be predicted: show the original port when the range allows it.
    start = port - lo if randomised and lo <= port < lo + size else 0
    for off in range(start, start + size):
        cand = replace(t, **{key: lo + off % size})
        if not table.clash(reply_of(cand), ct):
            note = (f"{RANDOM_PORT[key]}: the kernel picks one at random in {lo}-{lo + size - 1}; "
                    f"pktpath shows {lo + off % size}") if randomised else ""
            return cand, note
    return t, "no free port in the range: the kernel drops the packet"


def nat_packet(skb: Skb, ct: Conn, hook: Hook) -> bool:
    """nf_nat_packet(): rewrite the packet per the binding; True when it changed."""
    manip = hook_manip(hook)
    reply_dir = skb.ctinfo in (CtInfo.ESTABLISHED_REPLY, CtInfo.RELATED_REPLY)
    bit = IPS_SRC_NAT if manip == NF_NAT_MANIP_SRC else IPS_DST_NAT
    if reply_dir:
        bit = IPS_DST_NAT if bit == IPS_SRC_NAT else IPS_SRC_NAT
    if not ct.status & bit:
        return False
    other = ct.orig if reply_dir else ct.reply
    # The target tuple: for ICMP Tuple(other.dst, other.src, other.proto, other.sport, 0), else
    # other.inverted() -- only the fields used below, without making the Tuple.
    if skb.proto == IPPROTO_ICMP or other.proto == IPPROTO_ICMP:
        target_sport = other.sport
    else:
        target_sport = other.dport
    if manip == NF_NAT_MANIP_SRC:
        skb.src = other.dst
        if skb.proto in PORT_PROTOS:
            skb.sport = target_sport
        elif skb.proto == IPPROTO_ICMP and skb.icmp_id is not None:
            skb.icmp_id = target_sport
    else:
        skb.dst = other.src
        if skb.proto in PORT_PROTOS:
            # target.dport: other.sport, or for an ICMP ``other`` the reply type (inverted())
            skb.dport = other.sport if other.proto != IPPROTO_ICMP else other.inverted().dport
        elif skb.proto == IPPROTO_ICMP and skb.icmp_id is not None:
            skb.icmp_id = target_sport
    return True


def icmp_reply_translation(skb: Skb, ct: Conn, hook: Hook) -> bool:
    """nf_nat_icmp_reply_translation(): rewrite an ICMP error's outer header (and the header
    it quotes) so it looks like the reply to what its sender saw; True when it changed."""
    manip = hook_manip(hook)
    reply_dir = skb.ctinfo == CtInfo.RELATED_REPLY
    bit = IPS_SRC_NAT if manip == NF_NAT_MANIP_SRC else IPS_DST_NAT
    if reply_dir:
        bit = IPS_DST_NAT if bit == IPS_SRC_NAT else IPS_SRC_NAT
    if not ct.status & bit:
        return False
    other = ct.orig if reply_dir else ct.reply  # tuplehash[!dir]
    if skb.icmp_inner is not None:
        # the quoted packet is put back as it left this host's view (opposite manip)
        src, dst, proto, sport, dport = skb.icmp_inner
        if manip == NF_NAT_MANIP_SRC:  # inner gets the DST manip
            dst, dport = other.dst, other.dport
        else:
            src, sport = other.src, other.sport
        skb.icmp_inner = (src, dst, proto, sport, dport)
    if manip == NF_NAT_MANIP_SRC:
        skb.src = other.dst
    else:
        skb.dst = other.src
    return True
