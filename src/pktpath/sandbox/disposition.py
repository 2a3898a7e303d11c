"""The packet's fate, decided from evidence only, strongest evidence first.

1. a local send the kernel refused: ``sendto()`` errno (routing: ENETUNREACH,
   EHOSTUNREACH, EINVAL, EACCES -> unroutable; EPERM: a hook dropped it);
2. our packet captured leaving a peer interface -> forwarded (``--iif``) / sent (``--local``);
3. our packet received by a raw socket in the host -> local (it passed INPUT);
4. the target of the last TRACE entry: REJECT -> rejected, DROP -> dropped;
5. input routing counters (InNoRoutes, InAddrErrors), or a trace that never left
   PREROUTING -> unroutable; TTL exhausted while forwarding (InHdrErrors) -> dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pktpath.sandbox.observe import Seen
from pktpath.sandbox.spec import PacketSpec

ROUTING_ERRNOS = {"ENETUNREACH", "EHOSTUNREACH", "EINVAL", "EACCES", "ENETDOWN"}
DROP_TARGETS = {"DROP", "NFQUEUE", "QUEUE"}
# Targets that rewrite the header: the last TRACE line shows the packet before them.
REWRITES = {"DNAT": ("dst", "dport"), "REDIRECT": ("dst", "dport"), "NETMAP": ("src", "dst"),
            "SNAT": ("src", "sport"), "MASQUERADE": ("src", "sport")}
PACKET_FIELDS = ("src", "dst", "sport", "dport", "mark")


@dataclass(frozen=True)
class Evidence:
    spec: PacketSpec
    trace: list[dict[str, Any]]  # final entries (snapshot numbering)
    last_target: str | None  # target (or policy) of the last TRACE entry
    left: list[Seen]  # our packet leaving the host
    delivered: list[Seen]  # our packet delivered locally
    errno: str | None
    snmp: dict[str, int]


def _from_header(seen: Seen, mark: int) -> dict[str, Any]:
    h = seen.header
    return {"src": h.src, "dst": h.dst, "sport": h.sport, "dport": h.dport, "mark": mark}


def _last_logged(ev: Evidence) -> dict[str, Any]:
    """The packet as last logged, minus what the last entry's own target rewrote."""
    if not ev.trace:
        return {}
    last = ev.trace[-1]
    unknown = REWRITES.get(ev.last_target or "", ())
    return {k: last[k] for k in PACKET_FIELDS if k not in unknown}


def _final_mark(ev: Evidence, leaving: bool = False) -> int:
    """Marks are not on the wire: the last logged one (or the initial one).  For a packet that
    left, the last line logged on the way out (OUT= set): a local broadcast's looped-back copy
    logs its PREROUTING/INPUT lines (IN= set) before the original's last POSTROUTING line."""
    lines = ([e for e in ev.trace if e.get("oif")] if leaving else []) or list(ev.trace)
    if lines:
        return int(lines[-1]["mark"])
    # No table logged the packet, so no rule changed its mark: the socket's, or the one the
    # sandbox's own raw rule gave the arriving packet (veth scrubs it on the way out).
    return ev.spec.mark


def decide(ev: Evidence) -> dict[str, Any]:
    """-> ``result`` object: disposition, oif, packet, reason."""
    def result(disposition: str, packet: dict[str, Any], reason: str, oif: str | None = None) -> dict[str, Any]:
        return {"disposition": disposition, "oif": oif, "packet": packet, "reason": reason}

    if ev.errno is not None and ev.errno != "EPERM":
        kind = "unroutable" if ev.errno in ROUTING_ERRNOS else "dropped"
        return result(kind, {}, f"sendto() failed with {ev.errno}")
    if ev.left:
        first = ev.left[0]
        kind = "sent" if ev.spec.local else "forwarded"
        return result(kind, _from_header(first, _final_mark(ev, leaving=True)), f"captured leaving {first.iface}",
                      first.iface)
    if ev.delivered:
        seen = ev.delivered[0]
        mark = seen.mark if seen.mark is not None else _final_mark(ev)
        return result("local", _from_header(seen, mark), "received by a local raw socket after INPUT")
    if ev.last_target == "REJECT":
        return result("rejected", _last_logged(ev), "REJECT target")
    if ev.last_target in DROP_TARGETS or ev.errno == "EPERM":
        why = f"{ev.last_target} verdict" if ev.last_target else "sendto() failed with EPERM"
        return result("dropped", _last_logged(ev), why)
    for counter in ("IpExt.InNoRoutes", "Ip.InAddrErrors"):
        if ev.snmp.get(counter, 0) > 0:
            return result("unroutable", _last_logged(ev), f"input routing failed ({counter})")
    if ev.snmp.get("Ip.InHdrErrors", 0) > 0 or ev.snmp.get("Icmp.OutTimeExcds", 0) > 0:
        return result("dropped", _last_logged(ev), "TTL exceeded while forwarding")
    if not ev.spec.local and all(e.get("oif") is None for e in ev.trace):
        return result("unroutable", _last_logged(ev), "not delivered nor forwarded after PREROUTING")
    return result("dropped", _last_logged(ev), "no sign of the packet after its last TRACE entry")
