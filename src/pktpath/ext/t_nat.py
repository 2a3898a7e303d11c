"""``-j DNAT``, ``-j SNAT``, ``-j MASQUERADE``, ``-j REDIRECT``: NAT bindings
(net/netfilter/xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c; nf_nat_masquerade.c, nf_nat_redirect.c).

Each returns NF_ACCEPT after asking the conntrack core for a binding, which ends the nat
table for this hook (``nf_nat_inet_fn``'s ``goto do_nat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import PORT_PROTOS, Hook, Skb, XtParams
from pktpath.ext.nat_args import parse_nat_range, parse_ports
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.addr import int_to_ip
from pktpath.model.nat import NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NatRange
from pktpath.model.xtables import Target, Verdict

NAT_ONLY = frozenset({"nat"})


def _ports_text(r: NatRange) -> str:
    """`` --to-ports A[-B]`` of MASQUERADE and REDIRECT, as iptables-save prints it."""
    if r.min_port is None:
        return ""
    return f" --to-ports {r.min_port}" + (f"-{r.max_port}" if r.max_port != r.min_port else "")


def _flags(r: NatRange) -> str:
    out = ""
    if r.random:
        out += " --random"
    if r.random_fully:
        out += " --random-fully"
    if r.persistent:
        out += " --persistent"
    return out


# What a DNAT/SNAT target reports ("DNAT to 10.0.0.1:80"), by id(): the target is kept alive with it.
_WHAT: dict[int, tuple[Target, str]] = {}


class _ToRange(Target):
    """DNAT and SNAT: bind the connection to an explicit range (xt_nat.c, xt_dnat_target_v2/xt_snat_target_v2)."""

    tables: ClassVar[frozenset[str] | None] = NAT_ONLY
    needs_conntrack: ClassVar[bool] = True
    manip: ClassVar[str]
    option: ClassVar[str]
    range: NatRange

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        hit = _WHAT.get(id(self))
        if hit is None or hit[0] is not self:
            if len(_WHAT) >= 4096:
                _WHAT.clear()
            hit = _WHAT[id(self)] = (self, f"{self.name} to {self.range.render()}")
        return par.host.nat_setup(skb, self.range, self.manip, hit[1])

    def render(self) -> str:
        return f"-j {self.name} {self.option} {self.range.render()}{_flags(self.range)}"


@dataclass(frozen=True, slots=True)
class DnatTarget(_ToRange):
    name: ClassVar[str] = "DNAT"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.PREROUTING, Hook.OUTPUT})
    manip: ClassVar[str] = NF_NAT_MANIP_DST
    option: ClassVar[str] = "--to-destination"
    range: NatRange


@dataclass(frozen=True, slots=True)
class SnatTarget(_ToRange):
    name: ClassVar[str] = "SNAT"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.POSTROUTING, Hook.INPUT})
    manip: ClassVar[str] = NF_NAT_MANIP_SRC
    option: ClassVar[str] = "--to-source"
    range: NatRange


@dataclass(frozen=True, slots=True)
class MasqueradeTarget(Target):
    name: ClassVar[str] = "MASQUERADE"
    tables: ClassVar[frozenset[str] | None] = NAT_ONLY
    needs_conntrack: ClassVar[bool] = True
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.POSTROUTING})
    range: NatRange = NatRange()

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        """nf_nat_masquerade_ipv4(): the output device's address facing the next hop."""
        if skb.ct is None or skb.ct.orig.src == 0:
            return Verdict.ACCEPT
        assert par.out_dev is not None
        newsrc = par.host.masquerade_source(skb, par.out_dev)
        if newsrc is None:
            skb.notes.append(f"MASQUERADE: {par.out_dev} ate my IP address (no address to use): dropped")
            return Verdict.DROP
        rng = NatRange(newsrc, newsrc, self.range.min_port, self.range.max_port,
                       self.range.random, self.range.random_fully)
        whose = (f"address of {par.out_dev}" if newsrc in par.host.dev_addrs(par.out_dev)
                 else f"{par.out_dev} has no usable address: the kernel takes another device's")
        return par.host.nat_setup(skb, rng, NF_NAT_MANIP_SRC, f"MASQUERADE to {int_to_ip(newsrc)} ({whose})")

    def render(self) -> str:
        return f"-j MASQUERADE{_ports_text(self.range)}{_flags(self.range)}"


@dataclass(frozen=True, slots=True)
class RedirectTarget(Target):
    name: ClassVar[str] = "REDIRECT"
    tables: ClassVar[frozenset[str] | None] = NAT_ONLY
    needs_conntrack: ClassVar[bool] = True
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.PREROUTING, Hook.OUTPUT})
    range: NatRange = NatRange()

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        """nf_nat_redirect_ipv4(): locally generated -> 127.0.0.1, else the in-device's first address."""
        if par.hook == Hook.OUTPUT:
            newdst = 0x7F000001
        else:
            addrs = par.host.dev_addrs(par.in_dev or "")
            if not addrs:
                skb.notes.append(f"REDIRECT: {par.in_dev} has no IPv4 address: dropped")
                return Verdict.DROP
            newdst = addrs[0]
        rng = NatRange(newdst, newdst, self.range.min_port, self.range.max_port, self.range.random)
        return par.host.nat_setup(skb, rng, NF_NAT_MANIP_DST, f"REDIRECT to {int_to_ip(newdst)}"
                                  + (f" port {self.range.min_port}" if self.range.min_port is not None else ""))

    def render(self) -> str:
        return f"-j REDIRECT{_ports_text(self.range)}{_flags(self.range)}"


def _ports_ok(ctx: ParseCtx) -> bool:
    return ctx.proto in PORT_PROTOS and not ctx.inv_proto


def _common_flags(opts: Sequence[Opt]) -> dict[str, bool]:
    names = {o.name for o in opts}
    return {"random": "--random" in names, "random_fully": "--random-fully" in names,
            "persistent": "--persistent" in names}


def _with_flags(r: NatRange, opts: Sequence[Opt]) -> NatRange:
    f = _common_flags(opts)
    return NatRange(r.min_addr, r.max_addr, r.min_port, r.max_port, f["random"], f["random_fully"],
                    f["persistent"])


@register_target("DNAT", {"--to-destination": 1, "--random": 0, "--persistent": 0})
def parse_dnat(opts: Sequence[Opt], ctx: ParseCtx) -> DnatTarget:
    to = [o for o in opts if o.name == "--to-destination"]
    if not to:
        raise ctx.error("DNAT needs --to-destination ADDR[-ADDR][:PORT[-PORT]]")
    if len(to) > 1:
        raise ctx.unsupported("DNAT with several --to-destination (removed from the kernel in 2.6.10)")
    rng = parse_nat_range(to[0].args[0], ctx, "--to-destination", _ports_ok(ctx))
    return DnatTarget(_with_flags(rng, opts))


@register_target("SNAT", {"--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0})
def parse_snat(opts: Sequence[Opt], ctx: ParseCtx) -> SnatTarget:
    to = [o for o in opts if o.name == "--to-source"]
    if not to:
        raise ctx.error("SNAT needs --to-source ADDR[-ADDR][:PORT[-PORT]]")
    if len(to) > 1:
        raise ctx.unsupported("SNAT with several --to-source (removed from the kernel in 2.6.10)")
    rng = parse_nat_range(to[0].args[0], ctx, "--to-source", _ports_ok(ctx))
    return SnatTarget(_with_flags(rng, opts))


def _to_ports(opts: Sequence[Opt], ctx: ParseCtx) -> NatRange:
    to = [o for o in opts if o.name == "--to-ports"]
    if not to:
        return _with_flags(NatRange(), opts)
    if not _ports_ok(ctx):
        raise ctx.error("--to-ports needs -p tcp, udp, sctp, dccp or udplite in the rule")
    lo, hi = parse_ports(to[-1].args[0], ctx, "--to-ports")
    return _with_flags(NatRange(None, None, lo, hi), opts)


@register_target("MASQUERADE", {"--to-ports": 1, "--random": 0, "--random-fully": 0})
def parse_masquerade(opts: Sequence[Opt], ctx: ParseCtx) -> MasqueradeTarget:
    return MasqueradeTarget(_to_ports(opts, ctx))


@register_target("REDIRECT", {"--to-ports": 1, "--random": 0})
def parse_redirect(opts: Sequence[Opt], ctx: ParseCtx) -> RedirectTarget:
    return RedirectTarget(_to_ports(opts, ctx))
