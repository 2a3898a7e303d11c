"""``-m conntrack`` (net/netfilter/xt_conntrack.c, conntrack_mt): state, NAT status,
tuples, protocol, ports, status bits, direction.  Without a connection only a
--ctstate test can match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pktpath.engine.conntrack import IPS_DST_NAT, IPS_SRC_NAT, STATUS_NAMES
from pktpath.engine.skb import PROTO_NAMES, CtInfo, Skb, XtParams, proto_name
from pktpath.ext.ctstate import STATE_NAMES, packet_state, parse_states, render_states
from pktpath.ext.ports import parse_range, render_range
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.addr import Prefix
from pktpath.model.xtables import Match, MatchResult, Uncertain

TUPLE_OPTS = {"--ctorigsrc": ("orig", "src"), "--ctorigdst": ("orig", "dst"),
              "--ctreplsrc": ("reply", "src"), "--ctrepldst": ("reply", "dst")}
PORT_OPTS = {"--ctorigsrcport": ("orig", "sport"), "--ctorigdstport": ("orig", "dport"),
             "--ctreplsrcport": ("reply", "sport"), "--ctrepldstport": ("reply", "dport")}


@dataclass(frozen=True, slots=True)
class ConntrackMatch(Match):
    name: ClassVar[str] = "conntrack"
    needs_conntrack: ClassVar[bool] = True
    states: frozenset[str] | None = None
    inv_state: bool = False
    proto: int | None = None
    inv_proto: bool = False
    addrs: tuple[tuple[str, Prefix, bool], ...] = ()  # (option, prefix, invert)
    ports: tuple[tuple[str, tuple[int, int], bool], ...] = ()
    status: frozenset[str] | None = None
    inv_status: bool = False
    direction: str | None = None  # ORIGINAL / REPLY
    expires: tuple[int, int] | None = None
    inv_expires: bool = False
    order: tuple[str, ...] = field(default=(), compare=False)

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        ct = skb.ct
        states = self.states
        if states is not None:
            # {packet_state(skb)} | nat_states(skb) meets states, without building the sets
            hit = packet_state(skb) in states
            if not hit and ct is not None:
                hit = bool(ct.status & IPS_SRC_NAT and "SNAT" in states) or bool(
                    ct.status & IPS_DST_NAT and "DNAT" in states)
            if hit == self.inv_state:
                return False
        if ct is None:
            return self.states is not None
        if self.direction is not None:
            reply = skb.ctinfo is not None and skb.ctinfo >= CtInfo.ESTABLISHED_REPLY
            if (self.direction == "REPLY") != reply:
                return False
        for opt, prefix, inv in self.addrs:
            side, key = TUPLE_OPTS[opt]
            t = ct.orig if side == "orig" else ct.reply
            if prefix.contains(getattr(t, key)) == inv:
                return False
        if self.proto is not None and (ct.orig.proto == self.proto) == self.inv_proto:
            return False
        for opt, rng, inv in self.ports:
            side, key = PORT_OPTS[opt]
            t = ct.orig if side == "orig" else ct.reply
            if (rng[0] <= getattr(t, key) <= rng[1]) == inv:
                return False
        if self.status is not None:
            mask = 0
            for s in self.status:
                mask |= STATUS_NAMES.get(s, 0)
            if bool(ct.status & mask) == self.inv_status:
                return False
        if self.expires is not None:
            return Uncertain("--ctexpire depends on the connection's remaining lifetime")
        return True

    def render(self) -> str:
        out = ["-m conntrack"]
        for key in self.order:
            if key == "state" and self.states is not None:
                out.append(("! " if self.inv_state else "") + "--ctstate " + render_states(self.states))
            elif key == "proto" and self.proto is not None:
                out.append(("! " if self.inv_proto else "") + "--ctproto " + proto_name(self.proto))
            elif key in TUPLE_OPTS:
                for opt, prefix, inv in self.addrs:
                    if opt == key:
                        out.append(("! " if inv else "") + f"{opt} {prefix}")
            elif key in PORT_OPTS:
                for opt, rng, inv in self.ports:
                    if opt == key:
                        out.append(("! " if inv else "") + f"{opt} {render_range(rng)}")
            elif key == "status" and self.status is not None:
                out.append(("! " if self.inv_status else "") + "--ctstatus " + ",".join(sorted(self.status)))
            elif key == "dir" and self.direction:
                out.append(f"--ctdir {self.direction}")
        return " ".join(out)


OPTIONS = {"--ctstate": 1, "--ctproto": 1, "--ctstatus": 1, "--ctexpire": 1, "--ctdir": 1,
           **{k: 1 for k in TUPLE_OPTS}, **{k: 1 for k in PORT_OPTS}}


@register_match("conntrack", OPTIONS)
def parse_conntrack(opts: Sequence[Opt], ctx: ParseCtx) -> ConntrackMatch:
    kw: dict[str, object] = {}
    addrs, ports, order = [], [], []
    for o in opts:
        a = o.args[0]
        if o.name == "--ctstate":
            kw["states"], kw["inv_state"] = parse_states(a, ctx, STATE_NAMES), o.invert
            order.append("state")
        elif o.name == "--ctproto":
            low = a.lower()
            if low in PROTO_NAMES:
                kw["proto"] = PROTO_NAMES[low]
            elif a.isdigit():
                kw["proto"] = int(a)
            else:
                raise ctx.error(f"--ctproto: unknown protocol {a!r}")
            kw["inv_proto"] = o.invert
            order.append("proto")
        elif o.name in TUPLE_OPTS:
            try:
                addrs.append((o.name, Prefix.parse(a), o.invert))
            except ValueError:
                raise ctx.error(f"{o.name}: expected ADDRESS[/MASK], got {a!r}") from None
            order.append(o.name)
        elif o.name in PORT_OPTS:
            ports.append((o.name, parse_range(a, ctx), o.invert))
            order.append(o.name)
        elif o.name == "--ctstatus":
            names = frozenset(s.upper() for s in a.split(","))
            bad = names - set(STATUS_NAMES) - {"NONE"}
            if bad:
                raise ctx.error(f"--ctstatus: unknown status {sorted(bad)[0]!r}, expected NONE, EXPECTED, "
                                "SEEN_REPLY, ASSURED, CONFIRMED")
            kw["status"], kw["inv_status"] = names, o.invert
            order.append("status")
        elif o.name == "--ctdir":
            if a.upper() not in ("ORIGINAL", "REPLY"):
                raise ctx.error("--ctdir: expected ORIGINAL or REPLY")
            kw["direction"] = a.upper()
            order.append("dir")
        elif o.name == "--ctexpire":
            lo, _, hi = a.partition(":")
            kw["expires"] = (int(lo), int(hi or lo))
            kw["inv_expires"] = o.invert
    if not order and "expires" not in kw:
        raise ctx.error("-m conntrack needs at least one --ct* option")
    return ConntrackMatch(addrs=tuple(addrs), ports=tuple(ports), order=tuple(order), **kw)  # type: ignore[arg-type]
