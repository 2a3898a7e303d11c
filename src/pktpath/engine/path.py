"""The walk of one packet through the host: ingress -> PREROUTING -> routing ->
INPUT | FORWARD -> POSTROUTING, or a local send: routing -> OUTPUT -> POSTROUTING
(-> loopback -> PREROUTING -> INPUT).

Theory of operation
-------------------
* ``HOOK_ORDER`` is the kernel's hook table (K1): on each hook the registered functions
  run in ascending priority -- the iptables tables, conntrack (-200 / INT_MAX) and the
  nat hooks (-100 / 100).  An ACCEPT from one table moves on to the next function on the
  hook; DROP ends the walk (``nf_hook_slow``).  Tables absent from the snapshot register
  no hook and are not traversed.
* Conntrack runs only when the ruleset needs it (kernel-semantics, observed 4).  Without
  it the nat chains are never consulted; with it they run only for the first packet of a
  connection, once per manip type (K4).
* Routing happens where the kernel does it: after PREROUTING (``ip_rcv_finish``), before
  OUTPUT (the socket's route), and again after OUTPUT when mangle changed the mark,
  addresses or TOS, or nat changed the destination (``ip_route_me_harder``).
* Every walk is deterministic given ``choices``: the branch to take at each uncertain
  match, in the order met.  ``explore()`` enumerates all branches, each a ``PathOutcome``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pktpath.engine import routing
from pktpath.engine.conntrack import (
    IPS_SEEN_REPLY,
    attach_new,
    find_related,
    new_state_for,
    skb_tuple,
    tcp_packet,
)
from pktpath.engine.host import Host
from pktpath.engine.nat import hook_manip, icmp_reply_translation, initialized, nat_packet, setup_info
from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, CtInfo, Hook, Skb, Socket, XtParams
from pktpath.engine.xt_eval import Row, TableImage, compile_table, do_table
from pktpath.model.addr import int_to_ip
from pktpath.model.nat import NatRange
from pktpath.model.packet import Packet
from pktpath.model.xtables import Uncertain, Verdict
from pktpath.trace.events import Choice, PathOutcome, Result
from pktpath.trace.records import EventRecord, PacketState, RowInfo, TraceRecord, fixed_event, ip_text

# (priority, what) per hook, ascending: K1 in kernel-semantics.md.
HOOK_ORDER: dict[Hook, tuple[tuple[int, str], ...]] = {
    Hook.PREROUTING: ((-300, "raw"), (-200, "conntrack"), (-150, "mangle"), (-100, "nat")),
    Hook.INPUT: ((-150, "mangle"), (0, "filter"), (50, "security"), (100, "nat"), (2**31 - 1, "confirm")),
    Hook.FORWARD: ((-150, "mangle"), (0, "filter"), (50, "security")),
    Hook.OUTPUT: ((-300, "raw"), (-200, "conntrack"), (-150, "mangle"), (-100, "nat"), (0, "filter"),
                  (50, "security")),
    Hook.POSTROUTING: ((-150, "mangle"), (100, "nat"), (2**31 - 1, "confirm")),
}

L4_HEADER = {IPPROTO_TCP: 20, IPPROTO_UDP: 8, IPPROTO_ICMP: 8}
# Enum.name is a slow descriptor and an Enum hashes in Python: the walk goes by hook._name_.
_HOOK_ORDER = {hook.name: order for hook, order in HOOK_ORDER.items()}
_ACCEPT = Verdict.ACCEPT
_RELATED_ANY = (CtInfo.RELATED, CtInfo.RELATED_REPLY)
_NEW_OR_RELATED = (CtInfo.NEW, CtInfo.RELATED, CtInfo.RELATED_REPLY)
_REPLY_DIR = (CtInfo.ESTABLISHED_REPLY, CtInfo.RELATED_REPLY)
_TABLE, _CONNTRACK, _CONFIRM, _NAT = 0, 1, 2, 3  # the steps of a hook (Engine.plans)
_MANIP = {hook.name: hook_manip(hook) for hook in Hook}


class _Stop(Exception):
    """The packet's walk ends here (dropped, rejected, unroutable)."""

    def __init__(self, disposition: str, reason: str) -> None:
        super().__init__(reason)
        self.disposition = disposition
        self.reason = reason


@dataclass
class Engine:
    """A host compiled for walking: table images are built once and reused."""

    host: Host

    def __post_init__(self) -> None:
        self.images: dict[str, TableImage] = {
            name: compile_table(t) for name, t in self.host.ruleset.tables.items()}
        # What the trace shows of each row reached.  Keyed by the row itself: a row hashes by
        # identity, and rows that compare equal would show alike anyway.
        self.row_infos: dict[Row, RowInfo] = {}
        # Packet states seen by recent walks (the walks of one packet share most of them).  The
        # input device's MAC is looked up when a state is made: the engine's host.net is fixed.
        self.states: dict[tuple[object, ...], PacketState] = {}
        self.macs: dict[str | None, str | None] = {}
        # Events that many walks report alike (hooks, routes, verdicts), with their JSON.
        self.fixed_events: dict[tuple[object, ...], tuple[object, EventRecord]] = {}
        self.routes = routing.RouteMemo(self.host.net)
        # Per hook: its HOOK_ORDER steps, without the tables this host does not have.
        steps = {"conntrack": _CONNTRACK, "confirm": _CONFIRM, "nat": _NAT}
        self.plans = {name: tuple((steps.get(what, _TABLE), what) for _prio, what in order
                                  if what in steps or what in self.images)
                      for name, order in _HOOK_ORDER.items()}
        self.tcp_loose = (self.host.net, bool(self.host.sysctl_int("net.netfilter.nf_conntrack_tcp_loose", 1)))

    def row_info(self, row: Row) -> RowInfo:
        info = self.row_infos.get(row)
        if info is None:
            rule = row.rule
            label = row.label
            info = RowInfo(row, label, rule.text if rule else None,
                           str(rule.origin) if rule and rule.origin else None,
                           label + (f"  {rule.text}" if rule else "  (end of chain)"))
            self.row_infos[row] = info
        return info

    def packet_state(self, key: tuple[object, ...]) -> PacketState:
        st = self.states.get(key)
        if st is None:
            if len(self.states) >= 4096:
                self.states.clear()
            st = self.states[key] = PacketState(key, self.mac_of(key[0]))  # type: ignore[arg-type]
        return st

    def fixed_event(self, key: tuple[object, ...], kind: str, message: str, data: dict[str, object],
                    keep: object = None) -> EventRecord:
        """The record of an event many walks report alike, made once (``keep``: an object
        whose id() is part of ``key``, kept alive with it)."""
        if len(self.fixed_events) >= 4096:
            self.fixed_events.clear()
        rec = fixed_event(kind, message, data)
        self.fixed_events[key] = (keep, rec)
        return rec

    def mac_of(self, dev: str | None) -> str | None:
        """The MAC address of an input device (the TRACE line's MAC= destination)."""
        try:
            return self.macs[dev]
        except KeyError:
            pass
        link = self.host.net.link(dev) if dev else None
        mac = self.macs[dev] = link.mac if link else None
        return mac

    def explore(self, pkt: Packet, max_paths: int = 256) -> list[PathOutcome]:
        """Every fate the packet can have, most probable first."""
        return [w.outcome for w in self.explore_walks(pkt, max_paths)]

    def explore_walks(self, pkt: Packet, max_paths: int = 256) -> list[Walk]:
        """The finished walks, one per fate, most probable first (ties: order met)."""
        walks: list[Walk] = []
        pending: list[list[bool]] = [[]]
        while pending and len(walks) < max_paths:
            prefix = pending.pop()
            walk = Walk(self, pkt, prefix)
            walk.run()
            walks.append(walk)
            # Every decision made past the prefix has an untaken alternative.
            for i in range(len(prefix), len(walk.decisions)):
                pending.append(walk.decisions[:i] + [not walk.decisions[i]])
        walks.sort(key=lambda w: -(w.probability if w.probability is not None else -1.0))
        return walks


class Walk:
    """One deterministic walk, following ``prefix`` at uncertain matches (then: matched)."""

    def __init__(self, engine: Engine, pkt: Packet, prefix: list[bool]) -> None:
        self.engine = engine
        # Each walk evolves its own copy of the conntrack table.
        self.host = engine.host.with_conntrack(engine.host.conntrack.clone())
        self.pkt = pkt
        self.prefix = prefix
        self.decisions: list[bool] = []
        self.choices: list[Choice] = []
        # What the outcome's trace and events are built from (pktpath.trace.records).
        self.trace_records: list[TraceRecord] = []
        self.event_records: list[EventRecord] = []
        self.probability: float | None = 1.0
        self.first_src = pkt.src or 0  # a local sender's source as the kernel chose it
        self._state: PacketState | None = None
        self._row_infos = engine.row_infos

    # ------------------------------------------------------------------ plumbing
    def event(self, kind: str, message: str, **data: object) -> None:
        self.event_records.append((kind, message, data))

    def decide(self, label: str, unc: Uncertain) -> bool:
        i = len(self.decisions)
        matched = self.prefix[i] if i < len(self.prefix) else True
        self.decisions.append(matched)
        if unc.probability is None:
            self.probability = None
        elif self.probability is not None:
            self.probability *= unc.probability if matched else 1.0 - unc.probability
        self.choices.append(Choice(label, matched, unc.why, unc.probability))
        key = ("decision", label, matched, unc.why, type(unc.probability), unc.probability)
        hit = self.engine.fixed_events.get(key)
        self.event_records.append(hit[1] if hit is not None else self.engine.fixed_event(
            key, "decision", f"{label}: {'assumed to match' if matched else 'assumed not to match'} ({unc.why})",
            {"id": label, "matched": matched, "probability": unc.probability}))
        return matched

    def on_match(self, row: Row, skb: Skb, par: XtParams) -> None:
        """A matched row: its TRACE line (with the packet as it is now) and a rule event."""
        info = self._row_infos.get(row)
        if info is None:
            info = self.engine.row_info(row)
        key = (par.in_dev, par.out_dev, skb.src, skb.dst, skb.proto, skb.sport, skb.dport, skb.mark, skb.ttl,
               skb.length, skb.tos, skb.ident, skb.tcp_flags, skb.icmp_type, skb.icmp_code, skb.icmp_id,
               skb.mac_src)
        st = self._state
        if st is None or st.key != key:
            st = self._state = self.engine.packet_state(key)
        rec = (info, st, skb.ctinfo)  # the TRACE line, and the rule event (mark: the state's)
        self.trace_records.append(rec)
        self.event_records.append(rec)

    # ------------------------------------------------------------------ the walk
    def run(self) -> PathOutcome:
        skb = self.make_skb()
        try:
            if self.pkt.local:
                disposition, oif, reason = self.local_out(skb)
            else:
                disposition, oif, reason = self.from_wire(skb)
        except _Stop as stop:
            disposition, oif, reason = stop.disposition, None, stop.reason
        result = Result(disposition, oif, self.packet_fields(skb), reason, tuple(sorted(skb.uncertain)))
        key = ("result", disposition, reason, oif)
        hit = self.engine.fixed_events.get(key)
        self.event_records.append(hit[1] if hit is not None else self.engine.fixed_event(
            key, "result", f"{disposition}: {reason}", {"disposition": disposition, "oif": oif}))
        self.skb = skb
        self.outcome = PathOutcome.from_records(self.probability, tuple(self.choices), self.trace_records,
                                                self.event_records, result)
        return self.outcome

    def make_skb(self) -> Skb:
        p = self.pkt
        length = p.length if p.length is not None else 20 + L4_HEADER.get(p.proto, 0)
        skb = Skb(src=p.src or 0, dst=p.dst, proto=p.proto, sport=p.sport, dport=p.dport,
                  tcp_flags=p.tcp_flags if p.proto == IPPROTO_TCP else 0, icmp_type=p.icmp_type,
                  icmp_code=p.icmp_code, icmp_id=p.icmp_id, icmp_inner=p.icmp_inner,
                  ttl=p.ttl, length=length, tos=p.tos,
                  ident=p.ident, mark=p.mark, mac_src=p.mac_src, iif=p.iif)
        if p.local:
            skb.sk = Socket(p.uid, p.gid)
        if p.dst == 0xFFFFFFFF or (p.dst >> 28) == 0xE:
            skb.pkt_type = "broadcast" if p.dst == 0xFFFFFFFF else "multicast"
        return skb

    def packet_fields(self, skb: Skb) -> dict[str, object]:
        out: dict[str, object] = {"src": ip_text(skb.src), "dst": ip_text(skb.dst), "sport": skb.sport,
                                  "dport": skb.dport, "mark": skb.mark}
        if skb.proto == IPPROTO_ICMP:
            out["icmp_type"], out["icmp_code"], out["icmp_id"] = skb.icmp_type, skb.icmp_code, skb.icmp_id
        return out

    def run_hook(self, hook: Hook, skb: Skb, in_dev: str | None, out_dev: str | None,
                 after_table: Callable[[str, Skb], None] | None = None) -> None:
        name = hook._name_
        key = ("hook", name, in_dev, out_dev)
        hit = self.engine.fixed_events.get(key)
        self.event_records.append(hit[1] if hit is not None else self.engine.fixed_event(
            key, "hook", f"{name} (in={in_dev or '-'} out={out_dev or '-'})", {"hook": name}))
        for step, what in self.engine.plans[name]:
            if step == _TABLE:
                verdict = self.table(what, hook, skb, in_dev, out_dev)
                if verdict is not _ACCEPT:
                    self.check_verdict(verdict, what, hook, skb)
                if after_table is not None:
                    after_table(what, skb)
            elif step == _CONNTRACK:
                self.conntrack_in(skb, hook)
            elif step == _CONFIRM:
                self.confirm(skb)
            else:
                self.nat_hook(skb, hook, in_dev, out_dev)

    def table(self, name: str, hook: Hook, skb: Skb, in_dev: str | None, out_dev: str | None) -> Verdict:
        img = self.engine.images[name]
        par = XtParams(hook, name, in_dev, out_dev, self.host)
        return do_table(img, hook._name_, skb, par, self.decide, self.on_match)

    def check_verdict(self, verdict: Verdict, table: str, hook: Hook, skb: Skb) -> None:
        if verdict is Verdict.ACCEPT:
            return
        where = f"{table}:{hook._name_}"
        if verdict is Verdict.DROP:
            last = self.trace_records[-1][0].label if self.trace_records else where
            if skb.rejected_with:
                raise _Stop("rejected", f"rejected by {last} with {skb.rejected_with}")
            why = "; ".join(n for n in skb.notes if "dropped" in n)
            raise _Stop("dropped", f"dropped by {last}" + (f" ({why})" if why else ""))
        if verdict is Verdict.QUEUE:
            raise _Stop("dropped", f"queued to userspace by {where} (NFQUEUE); with no listener the "
                        "kernel drops it, and what a listener decides is outside the snapshot")
        raise _Stop("dropped", f"stolen by {where}")

    # ------------------------------------------------------------------ conntrack and NAT
    def conntrack_in(self, skb: Skb, hook: Hook) -> None:
        """nf_conntrack_in(): fix ctinfo for the rest of the walk."""
        if not self.host.conntrack_enabled:
            return
        if skb.ct is not None or skb.ctinfo is not None:
            if skb.ctinfo == CtInfo.UNTRACKED:
                self.event("conntrack", "untracked (NOTRACK / CT --notrack in raw): conntrack skips it",
                           state="UNTRACKED")
            return
        related = find_related(self.host.conntrack, skb)
        if related is not None:
            skb.ct, skb.ctinfo = related
            self.event("conntrack", f"{skb.ctinfo.name}: an ICMP error about a known connection", state="RELATED")
            return
        table = self.host.conntrack
        found = table.find(skb_tuple(skb), skb.ct_zone) if table.conns else None
        if found is not None:
            ct, is_reply = found
            what = ""
            if skb.proto == IPPROTO_TCP:
                valid, what = tcp_packet(ct, skb, is_reply, self.host.conntrack)
                if not valid:
                    self.event("conntrack", f"INVALID: {what}", state="INVALID")
                    return
            skb.ct = ct
            if is_reply:
                skb.ctinfo = CtInfo.ESTABLISHED_REPLY
                ct.status |= IPS_SEEN_REPLY
            else:
                skb.ctinfo = CtInfo.ESTABLISHED if ct.status & IPS_SEEN_REPLY else CtInfo.NEW
            self.event("conntrack", f"belongs to a known connection ({'reply' if is_reply else 'original'} "
                       f"direction): {skb.ctinfo.name}" + (f"; {what}" if what else ""), state=skb.ctinfo.name)
            return
        net, loose = self.engine.tcp_loose
        if net is not self.host.net:
            loose = bool(self.host.sysctl_int("net.netfilter.nf_conntrack_tcp_loose", 1))
        ok, tcp_state, why = new_state_for(skb, loose)
        if not ok:
            self.event("conntrack", f"INVALID: {why}", state="INVALID")
            return
        ct = attach_new(skb, skb.ct_zone)
        ct.tcp_state = tcp_state
        key = ("conntrack-new", why)
        hit = self.engine.fixed_events.get(key)
        self.event_records.append(hit[1] if hit is not None else self.engine.fixed_event(
            key, "conntrack", "NEW connection" + (f" ({why})" if why else ""), {"state": "NEW"}))

    def confirm(self, skb: Skb) -> None:
        if skb.ct is not None:
            self.host.conntrack.confirm(skb.ct)

    def nat_hook(self, skb: Skb, hook: Hook, in_dev: str | None, out_dev: str | None) -> None:
        """nf_nat_inet_fn(): run the nat table for a connection's first packet, then nf_nat_packet()."""
        ct = skb.ct
        if ct is None:
            return
        manip = _MANIP[hook._name_]
        ctinfo = skb.ctinfo
        if ctinfo in _RELATED_ANY and skb.proto == IPPROTO_ICMP:
            # nf_nat_ipv4_fn(): an ICMP error is translated from the binding, never by the nat table.
            if icmp_reply_translation(skb, ct, hook):
                self.event("nat", f"ICMP error translated at {hook._name_}: now {int_to_ip(skb.src)} -> "
                           f"{int_to_ip(skb.dst)}")
            return
        if ctinfo in _NEW_OR_RELATED and not initialized(ct, manip):
            if "nat" in self.engine.images:
                before = len(skb.notes)
                verdict = self.table("nat", hook, skb, in_dev, out_dev)
                if verdict is not Verdict.ACCEPT:
                    self.check_verdict(verdict, "nat", hook, skb)
                for note in skb.notes[before:]:
                    if note.startswith("NAT:"):
                        key = ("nat", note)
                        hit = self.engine.fixed_events.get(key)
                        self.event_records.append(hit[1] if hit is not None else self.engine.fixed_event(
                            key, "nat", note[5:], {}))
            if not initialized(ct, manip):
                cur = ct.reply.dst if manip == "SRC" else ct.reply.src
                setup_info(self.host.conntrack, ct, NatRange(cur, cur), manip)
        before_src, before_dst, before_sport, before_dport = skb.src, skb.dst, skb.sport, skb.dport
        if nat_packet(skb, ct, hook) and (skb.src, skb.dst, skb.sport, skb.dport) != (
                before_src, before_dst, before_sport, before_dport):
            reply = skb.ctinfo in _REPLY_DIR
            what = "reply translated back (the connection's NAT, undone)" if reply else f"{manip[0]}NAT applied"
            self.event("nat", f"{what} at {hook._name_}: "
                       f"{ip_text(before_src)}:{before_sport} -> {ip_text(before_dst)}:{before_dport} becomes "
                       f"{ip_text(skb.src)}:{skb.sport} -> {ip_text(skb.dst)}:{skb.dport}")

    # ------------------------------------------------------------------ routing
    def routes(self) -> routing.RouteMemo:
        memo = self.engine.routes
        if memo.net is not self.host.net:
            memo = self.engine.routes = routing.RouteMemo(self.host.net)
        return memo

    def route_in(self, skb: Skb, iif: str) -> routing.RouteResult:
        res = self.routes().route_input(skb.dst, skb.src, iif, skb.mark, skb.tos, skb.proto, skb.sport or 0,
                                        skb.dport or 0)
        self.route_event("input", res)
        return res

    def route_out(self, skb: Skb, src: int) -> routing.RouteResult:
        uid = skb.sk.uid if skb.sk else 0
        res = self.routes().route_output(skb.dst, src, skb.mark, skb.tos, uid, skb.proto, skb.sport or 0,
                                         skb.dport or 0)
        self.route_event("output", res)
        return res

    def route_event(self, kind: str, res: routing.RouteResult) -> None:
        key = ("route", kind, id(res))
        hit = self.engine.fixed_events.get(key)
        if hit is not None and hit[0] is res:
            self.event_records.append(hit[1])
            return
        if res.error:
            msg = f"{kind} route lookup failed: {res.error} ({res.reason})"
        else:
            via = f" via {int_to_ip(res.gateway)}" if res.gateway else ""
            msg = f"{kind} route: {res.type}{via} dev {res.dev}" + (f" ({res.reason})" if res.reason else "")
        self.event_records.append(self.engine.fixed_event(key, "route", msg, {
            "lookup": kind, "error": res.error, "type": res.type, "dev": res.dev,
            "gateway": int_to_ip(res.gateway) if res.gateway else None, "steps": list(res.steps)}, res))

    def follow_hop(self, res: routing.RouteResult) -> tuple[str | None, int | None]:
        """The device and gateway of the route, choosing among multipath hops."""
        if len(res.hops) > 1:
            hops = list(res.hops)
            for i, (hop, weight) in enumerate(hops[:-1]):
                if self.decide(f"route:nexthop:{hop.dev}", Uncertain(
                        f"multipath route: the kernel hashes the flow onto one of {len(hops)} hops",
                        weight / sum(w for _, w in hops[i:]))):
                    return hop.dev, hop.gateway
            last = hops[-1][0]
            return last.dev, last.gateway
        return res.dev, res.gateway

    # ------------------------------------------------------------------ paths
    def from_wire(self, skb: Skb) -> tuple[str, str | None, str]:
        iif = self.pkt.iif
        assert iif is not None
        self.run_hook(Hook.PREROUTING, skb, iif, None)
        res = self.route_in(skb, iif)
        if res.error:
            raise _Stop("unroutable", f"input routing on {iif}: {res.reason or res.error}")
        if res.type in ("local", "broadcast", "multicast"):
            return self.local_in(skb, iif)
        dev, gw = self.follow_hop(res)
        skb.route = (dev, gw)
        if skb.pkt_type != "host":
            raise _Stop("dropped", "a link-layer broadcast/multicast frame is never forwarded (ip_forward)")
        if skb.ttl <= 1:
            raise _Stop("dropped", f"TTL {skb.ttl} would expire in forwarding (ICMP time exceeded)")
        skb.ttl -= 1  # ip_forward() decrements before the FORWARD hook
        assert dev is not None
        self.run_hook(Hook.FORWARD, skb, iif, dev)
        # ip_output() passes skb->dev, still the input device, as the hook's in-device.
        self.run_hook(Hook.POSTROUTING, skb, iif, dev)
        via = f" via {int_to_ip(gw)}" if gw else ""
        return "forwarded", dev, f"forwarded out of {dev}{via}"

    def local_in(self, skb: Skb, iif: str) -> tuple[str, str | None, str]:
        self.run_hook(Hook.INPUT, skb, iif, None)
        return "local", None, f"delivered to the local stack ({int_to_ip(skb.dst)}) through INPUT"

    def local_out(self, skb: Skb) -> tuple[str, str | None, str]:
        res = self.route_out(skb, self.pkt.src or 0)
        if res.error:
            raise _Stop("unroutable", f"the socket's route lookup fails ({res.error}): {res.reason}; "
                        "the packet never reaches OUTPUT")
        if not skb.src:
            skb.src = res.prefsrc or 0
        self.first_src = skb.src
        dev, gw = self.follow_hop(res)
        state: dict[str, object] = {"route": res, "dev": dev, "gw": gw}
        self.run_hook_output(skb, state)
        dev = state["dev"]  # type: ignore[assignment]
        out_route = state["route"]
        assert isinstance(out_route, routing.RouteResult) and isinstance(dev, str)
        skb.route = (dev, state["gw"])
        if out_route.type == "broadcast" and dev != "lo":
            self.loop_back_broadcast(skb, dev)
        self.run_hook(Hook.POSTROUTING, skb, None, dev)
        if out_route.type == "local" or dev == "lo":
            # Loopback: the packet comes back in on lo with its conntrack attached.
            skb.iif = "lo"
            self.run_hook(Hook.PREROUTING, skb, "lo", None)
            return self.local_in(skb, "lo")
        return "sent", dev, f"sent out of {dev}" + (f" via {int_to_ip(state['gw'])}" if state["gw"] else "")  # type: ignore[arg-type]

    def loop_back_broadcast(self, skb: Skb, dev: str) -> None:
        """ip_mc_output(): a broadcast the host sends is cloned; the clone passes POSTROUTING
        and comes straight back in on ``dev`` (PREROUTING, INPUT) before the original leaves.
        The clone shares the connection, so its nat POSTROUTING binding is the original's too."""
        clone = skb.copy()
        clone.notes = []
        self.event("note", f"a broadcast sent by this host is also looped back to it on {dev} (ip_mc_output)")
        try:
            self.run_hook(Hook.POSTROUTING, clone, None, dev)
            clone.iif = dev
            self.run_hook(Hook.PREROUTING, clone, dev, None)
            self.run_hook(Hook.INPUT, clone, dev, None)
        except _Stop as stop:
            self.event("note", f"the looped-back copy stops there ({stop.reason}); the broadcast still leaves")

    def run_hook_output(self, skb: Skb, state: dict[str, object]) -> None:
        """OUTPUT: the hook's OUT= stays the socket route's device for the whole hook
        (nf_hook_state is fixed); a re-route only changes where POSTROUTING sends it."""
        dev = state["dev"]
        assert isinstance(dev, str)
        self.event("hook", f"OUTPUT (out={dev})", hook="OUTPUT")
        for _prio, what in _HOOK_ORDER["OUTPUT"]:
            if what == "conntrack":
                self.conntrack_in(skb, Hook.OUTPUT)
            elif what == "nat":
                before = skb.dst
                self.nat_hook(skb, Hook.OUTPUT, None, dev)
                if skb.dst != before:
                    self.reroute(skb, state, "nat")
            elif what in self.engine.images:
                snap = (skb.src, skb.dst, skb.mark, skb.tos)
                verdict = self.table(what, Hook.OUTPUT, skb, None, dev)
                self.check_verdict(verdict, what, Hook.OUTPUT, skb)
                if what == "mangle" and (skb.src, skb.dst, skb.mark, skb.tos) != snap:
                    self.reroute(skb, state, "mangle")

    def reroute(self, skb: Skb, state: dict[str, object], why: str) -> None:
        """ip_route_me_harder(): a new route after OUTPUT changed the packet."""
        new = self.route_out(skb, skb.src)
        if new.error:
            raise _Stop("unroutable", f"re-routing after {why} OUTPUT failed: {new.reason or new.error}")
        state["route"] = new
        state["dev"], state["gw"] = self.follow_hop(new)
