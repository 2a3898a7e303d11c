"""A whole exchange through the host (shared/spec/flow-json.md): the first packet, the
answers derived from what actually left the host, and later packets, each walked against
the conntrack table the earlier ones left.

Theory of operation
-------------------
* A reply is addressed to what the peer really saw: the previous packet's header as it
  left the host (or was delivered), with addresses and ports swapped.
* It enters where the previous packet left (its oif); the answer to a locally delivered
  packet is sent by the host itself (the OUTPUT path, mark 0).  ``reply_iif`` overrides
  where the responder's packets arrive, ``"none"`` says they never arrive.
* Each packet follows its most probable path; the conntrack table that path leaves is
  the one the next packet meets.  The exchange stops after a packet that is dropped,
  rejected or unroutable, or that never arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pktpath.engine.conntrack import entry_json
from pktpath.engine.path import Engine, Walk
from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, TCP_ACK, TCP_RST, TCP_SYN
from pktpath.errors import UsageError
from pktpath.model.addr import ip_to_int
from pktpath.model.packet import Packet

ICMP_ECHO_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}
STOPS = frozenset({"dropped", "rejected", "unroutable"})


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # reply / original
    tcp_flags: int | None = None
    icmp_error: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class FlowPacket:
    step: int
    role: str  # initiator / responder
    packet: Packet
    walk: Walk | None  # None when the packet never reached the host
    conntrack: tuple[dict[str, object], ...]

    @property
    def disposition(self) -> str:
        return self.walk.outcome.result.disposition if self.walk else "not-received"


def parse_step(text: str) -> Step:
    """``reply[:SPEC]`` / ``original[:SPEC]``, SPEC = TCP flags or ``icmp-TYPE/CODE``."""
    from pktpath.cli.packet_args import parse_tcp_flags

    kind, _, spec = text.partition(":")
    if kind not in ("reply", "original"):
        raise UsageError(f"--then {text}: expected reply[:SPEC] or original[:SPEC]")
    if not spec:
        return Step(kind)
    if spec.startswith("icmp-"):
        t, _, c = spec[5:].partition("/")
        if not t.isdigit() or (c and not c.isdigit()):
            raise UsageError(f"--then {text}: expected icmp-TYPE/CODE, e.g. icmp-3/3")
        return Step(kind, icmp_error=(int(t), int(c or 0)))
    return Step(kind, tcp_flags=parse_tcp_flags(spec))


def run_flow(engine: Engine, first: Packet, steps: list[Step], reply_iif: str | None) -> list[FlowPacket]:
    if reply_iif not in (None, "none") and engine.host.net.link(reply_iif) is None:
        raise UsageError(f"--reply-iif {reply_iif}: no such interface in the snapshot")
    out: list[FlowPacket] = []
    pkt = first
    role = "initiator"
    for n in range(len(steps) + 1):
        if n > 0:
            step = steps[n - 1]
            prev = out[-1]
            assert prev.walk is not None
            role = ("responder" if prev.role == "initiator" else "initiator") if step.kind == "reply" else "initiator"
            if step.icmp_error is not None and step.kind != "reply":
                raise UsageError("an ICMP error answers the previous packet: write --then reply:icmp-TYPE/CODE")
            pkt = _reply(prev, step) if step.kind == "reply" else _original(out[0], step)
            if pkt.local and step.kind == "reply":
                pkt = replace(pkt, mark=_host_mark(engine, out, prev, role, pkt))
            if role == "responder" and reply_iif is not None and not pkt.local:
                if reply_iif == "none":
                    out.append(FlowPacket(n + 1, role, pkt, None, _table(engine)))
                    break
                pkt = replace(pkt, iif=reply_iif)
        walk = engine.explore_walks(pkt)[0]
        engine.host.conntrack = walk.host.conntrack
        if pkt.local and pkt.src is None:
            pkt = replace(pkt, src=walk.first_src)  # the source the kernel chose
        out.append(FlowPacket(n + 1, role, pkt, walk, _table(engine)))
        if walk.outcome.result.disposition in STOPS:
            break
    return out


def _host_mark(engine: Engine, out: list[FlowPacket], prev: FlowPacket, role: str, pkt: Packet) -> int:
    """The mark of a packet the host itself sends in answer.

    The initiating socket sends with its own mark (__ip_queue_xmit: skb->mark = sk->sk_mark).
    As the responder: an ICMP echo reply or a RST has no socket and carries the answered
    packet's mark only with net.ipv4.fwmark_reflect (IP4_REPLY_MARK); a listening socket's
    answers carry the SYN's mark only with net.ipv4.tcp_fwmark_accept (inet_request_mark)."""
    first = out[0]
    if role == "initiator":
        return first.packet.mark if first.packet.local else 0
    sysctls = engine.host.net.sysctls
    assert prev.walk is not None and first.walk is not None
    if pkt.proto == IPPROTO_ICMP or (pkt.proto == IPPROTO_TCP and pkt.tcp_flags & TCP_RST):
        reflect = sysctls.get_int("net.ipv4.fwmark_reflect")
        return int(prev.walk.outcome.result.packet.get("mark") or 0) if reflect else 0
    if pkt.proto == IPPROTO_TCP and sysctls.get_int("net.ipv4.tcp_fwmark_accept"):
        return int(first.walk.outcome.result.packet.get("mark") or 0)
    return 0


def _table(engine: Engine) -> tuple[dict[str, object], ...]:
    return tuple(entry_json(c) for c in engine.host.conntrack.conns)


def _reply(prev: FlowPacket, step: Step) -> Packet:
    assert prev.walk is not None
    res = prev.walk.outcome.result
    seen = res.packet  # as it left the host, or as it was delivered
    local = res.disposition == "local"
    p = prev.packet
    flags = step.tcp_flags
    if flags is None:
        flags = TCP_SYN | TCP_ACK if p.proto == IPPROTO_TCP and p.tcp_flags & TCP_SYN and not p.tcp_flags & TCP_ACK \
            else TCP_ACK
    if step.icmp_error is not None:
        # An ICMP error from the previous packet's receiver, quoting that packet as it was received.
        if p.proto == IPPROTO_ICMP:
            ports = (int(seen.get("icmp_id") or 0), (p.icmp_type or 0) << 8 | (p.icmp_code or 0))
        else:
            ports = (int(seen["sport"] or 0), int(seen["dport"] or 0))
        quoted = (ip_to_int(str(seen["src"])), ip_to_int(str(seen["dst"])), p.proto, *ports)
        return Packet(dst=ip_to_int(str(seen["src"])), src=ip_to_int(str(seen["dst"])),
                      iif=None if local else res.oif, proto=IPPROTO_ICMP, icmp_type=step.icmp_error[0],
                      icmp_code=step.icmp_error[1], icmp_inner=quoted, mark=0, ttl=64)
    icmp: dict[str, object] = {}
    if p.proto == IPPROTO_ICMP:
        icmp = {"icmp_type": ICMP_ECHO_REPLY.get(p.icmp_type or 8, 0), "icmp_code": 0,
                "icmp_id": seen.get("icmp_id", p.icmp_id)}
    return Packet(
        dst=ip_to_int(str(seen["src"])), src=ip_to_int(str(seen["dst"])),
        iif=None if local else res.oif, proto=p.proto,
        sport=seen["dport"], dport=seen["sport"],
        tcp_flags=flags, mark=0, ttl=64, **icmp)  # type: ignore[arg-type]


def _original(first: FlowPacket, step: Step) -> Packet:
    p = first.packet
    if p.src is None and first.walk is not None:
        p = replace(p, src=first.walk.first_src)
    return replace(p, tcp_flags=step.tcp_flags if step.tcp_flags is not None else TCP_ACK)
