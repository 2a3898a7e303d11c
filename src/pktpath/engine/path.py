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

import dataclasses
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
from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, CtInfo, Hook, Skb, Socket, XtParams, proto_name
from pktpath.engine.xt_eval import Row, TableImage, compile_table, do_table
from pktpath.model.addr import int_to_ip
from pktpath.model.nat import NatRange
from pktpath.model.packet import Packet
from pktpath.model.xtables import Uncertain, Verdict
from pktpath.trace.events import Choice, Event, PathOutcome, Result, TraceEntry
from pktpath.trace.kernel_log import trace_line

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
        self.host = dataclasses.replace(engine.host, conntrack=engine.host.conntrack.clone())
        self.pkt = pkt
        self.prefix = prefix
        self.decisions: list[bool] = []
        self.choices: list[Choice] = []
        self.trace: list[TraceEntry] = []
        self.events: list[Event] = []
        self.probability: float | None = 1.0
        self.first_src = pkt.src or 0  # a local sender's source as the kernel chose it

    # ------------------------------------------------------------------ plumbing
    def event(self, kind: str, message: str, **data: object) -> None:
        self.events.append(Event(kind, message, dict(data)))

    def decide(self, label: str, unc: Uncertain) -> bool:
        i = len(self.decisions)
        matched = self.prefix[i] if i < len(self.prefix) else True
        self.decisions.append(matched)
        if unc.probability is None:
            self.probability = None
        elif self.probability is not None:
            self.probability *= unc.probability if matched else 1.0 - unc.probability
        self.choices.append(Choice(label, matched, unc.why, unc.probability))
        self.event("decision", f"{label}: {'assumed to match' if matched else 'assumed not to match'} "
                   f"({unc.why})", id=label, matched=matched, probability=unc.probability)
        return matched

    def on_match(self, row: Row, skb: Skb, par: XtParams) -> None:
        link = self.host.net.link(par.in_dev) if par.in_dev else None
        rule = row.rule
        entry = TraceEntry(
            id=row.label, iif=par.in_dev, oif=par.out_dev, src=int_to_ip(skb.src), dst=int_to_ip(skb.dst),
            proto=proto_name(skb.proto), sport=skb.sport, dport=skb.dport, mark=skb.mark,
            rule=rule.text if rule else None, origin=str(rule.origin) if rule and rule.origin else None,
            ttl=skb.ttl, len=skb.length, log=trace_line(row.label, skb, par.in_dev, par.out_dev,
                                                         link.mac if link else None))
        self.trace.append(entry)
        self.event("rule", row.label + (f"  {rule.text}" if rule else "  (end of chain)"),
                   id=row.label, origin=entry.origin, mark=skb.mark,
                   ctstate=skb.ctinfo.name if skb.ctinfo is not None else None)

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
        self.event("result", f"{disposition}: {reason}", disposition=disposition, oif=oif)
        self.skb = skb
        self.outcome = PathOutcome(self.probability, tuple(self.choices), tuple(self.trace), tuple(self.events),
                                   result)
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
        out: dict[str, object] = {"src": int_to_ip(skb.src), "dst": int_to_ip(skb.dst), "sport": skb.sport,
                                  "dport": skb.dport, "mark": skb.mark}
        if skb.proto == IPPROTO_ICMP:
            out["icmp_type"], out["icmp_code"], out["icmp_id"] = skb.icmp_type, skb.icmp_code, skb.icmp_id
        return out

    def run_hook(self, hook: Hook, skb: Skb, in_dev: str | None, out_dev: str | None,
                 after_table: Callable[[str, Skb], None] | None = None) -> None:
        self.event("hook", f"{hook.name} (in={in_dev or '-'} out={out_dev or '-'})", hook=hook.name)
        for _prio, what in HOOK_ORDER[hook]:
            if what == "conntrack":
                self.conntrack_in(skb, hook)
            elif what == "confirm":
                self.confirm(skb)
            elif what == "nat":
                self.nat_hook(skb, hook, in_dev, out_dev)
            elif what in self.engine.images:
                verdict = self.table(what, hook, skb, in_dev, out_dev)
                self.check_verdict(verdict, what, hook, skb)
                if after_table is not None:
                    after_table(what, skb)

    def table(self, name: str, hook: Hook, skb: Skb, in_dev: str | None, out_dev: str | None) -> Verdict:
        img = self.engine.images[name]
        par = XtParams(hook, name, in_dev, out_dev, self.host)
        return do_table(img, hook.name, skb, par, self.decide, self.on_match)

    def check_verdict(self, verdict: Verdict, table: str, hook: Hook, skb: Skb) -> None:
        where = f"{table}:{hook.name}"
        if verdict is Verdict.ACCEPT:
            return
        if verdict is Verdict.DROP:
            last = self.trace[-1].id if self.trace else where
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
        found = self.host.conntrack.find(skb_tuple(skb), skb.ct_zone)
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
        loose = bool(self.host.sysctl_int("net.netfilter.nf_conntrack_tcp_loose", 1))
        ok, tcp_state, why = new_state_for(skb, loose)
        if not ok:
            self.event("conntrack", f"INVALID: {why}", state="INVALID")
            return
        ct = attach_new(skb, skb.ct_zone)
        ct.tcp_state = tcp_state
        self.event("conntrack", "NEW connection" + (f" ({why})" if why else ""), state="NEW")

    def confirm(self, skb: Skb) -> None:
        if skb.ct is not None:
            self.host.conntrack.confirm(skb.ct)

    def nat_hook(self, skb: Skb, hook: Hook, in_dev: str | None, out_dev: str | None) -> None:
        """nf_nat_inet_fn(): run the nat table for a connection's first packet, then nf_nat_packet()."""
        ct = skb.ct
        if ct is None:
            return
        manip = hook_manip(hook)
        if skb.ctinfo in (CtInfo.RELATED, CtInfo.RELATED_REPLY) and skb.proto == IPPROTO_ICMP:
            # nf_nat_ipv4_fn(): an ICMP error is translated from the binding, never by the nat table.
            if icmp_reply_translation(skb, ct, hook):
                self.event("nat", f"ICMP error translated at {hook.name}: now {int_to_ip(skb.src)} -> "
                           f"{int_to_ip(skb.dst)}")
            return
        if skb.ctinfo in (CtInfo.NEW, CtInfo.RELATED, CtInfo.RELATED_REPLY) and not initialized(ct, manip):
            if "nat" in self.engine.images:
                before = len(skb.notes)
                verdict = self.table("nat", hook, skb, in_dev, out_dev)
                if verdict is not Verdict.ACCEPT:
                    self.check_verdict(verdict, "nat", hook, skb)
                for note in skb.notes[before:]:
                    if note.startswith("NAT:"):
                        self.event("nat", note[5:])
            if not initialized(ct, manip):
                cur = ct.reply.dst if manip == "SRC" else ct.reply.src
                setup_info(self.host.conntrack, ct, NatRange(cur, cur), manip)
        before_src, before_dst, before_sport, before_dport = skb.src, skb.dst, skb.sport, skb.dport
        if nat_packet(skb, ct, hook) and (skb.src, skb.dst, skb.sport, skb.dport) != (
                before_src, before_dst, before_sport, before_dport):
            reply = skb.ctinfo in (CtInfo.ESTABLISHED_REPLY, CtInfo.RELATED_REPLY)
            what = "reply translated back (the connection's NAT, undone)" if reply else f"{manip[0]}NAT applied"
            self.event("nat", f"{what} at {hook.name}: "
                       f"{int_to_ip(before_src)}:{before_sport} -> {int_to_ip(before_dst)}:{before_dport} becomes "
                       f"{int_to_ip(skb.src)}:{skb.sport} -> {int_to_ip(skb.dst)}:{skb.dport}")

    # ------------------------------------------------------------------ routing
    def route_in(self, skb: Skb, iif: str) -> routing.RouteResult:
        res = routing.route_input(self.host.net, routing.Flow(
            dst=skb.dst, src=skb.src, iif=iif, mark=skb.mark, tos=skb.tos, proto=skb.proto,
            sport=skb.sport or 0, dport=skb.dport or 0))
        self.route_event("input", res)
        return res

    def route_out(self, skb: Skb, src: int) -> routing.RouteResult:
        uid = skb.sk.uid if skb.sk else 0
        res = routing.route_output(self.host.net, routing.Flow(
            dst=skb.dst, src=src, mark=skb.mark, tos=skb.tos, uid=uid, proto=skb.proto,
            sport=skb.sport or 0, dport=skb.dport or 0))
        self.route_event("output", res)
        return res

    def route_event(self, kind: str, res: routing.RouteResult) -> None:
        if res.error:
            msg = f"{kind} route lookup failed: {res.error} ({res.reason})"
        else:
            via = f" via {int_to_ip(res.gateway)}" if res.gateway else ""
            msg = f"{kind} route: {res.type}{via} dev {res.dev}" + (f" ({res.reason})" if res.reason else "")
        self.event("route", msg, lookup=kind, error=res.error, type=res.type, dev=res.dev,
                   gateway=int_to_ip(res.gateway) if res.gateway else None, steps=list(res.steps))

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
        for _prio, what in HOOK_ORDER[Hook.OUTPUT]:
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
