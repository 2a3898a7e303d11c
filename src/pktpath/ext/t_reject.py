"""``-j REJECT`` (net/ipv4/netfilter/ipt_REJECT.c): drop and answer with an ICMP error or a TCP RST."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict

REJECT_TYPES = {
    "icmp-net-unreachable": "icmp-net-unreachable", "net-unreach": "icmp-net-unreachable",
    "icmp-host-unreachable": "icmp-host-unreachable", "host-unreach": "icmp-host-unreachable",
    "icmp-proto-unreachable": "icmp-proto-unreachable", "proto-unreach": "icmp-proto-unreachable",
    "icmp-port-unreachable": "icmp-port-unreachable", "port-unreach": "icmp-port-unreachable",
    "icmp-net-prohibited": "icmp-net-prohibited", "net-prohib": "icmp-net-prohibited",
    "icmp-host-prohibited": "icmp-host-prohibited", "host-prohib": "icmp-host-prohibited",
    "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
    "icmp-admin-prohibited": "icmp-admin-prohibited", "admin-prohib": "icmp-admin-prohibited",
}


@dataclass(frozen=True, slots=True)
class RejectTarget(Target):
    name: ClassVar[str] = "REJECT"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.INPUT, Hook.FORWARD, Hook.OUTPUT})
    with_: str = "icmp-port-unreachable"

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.rejected_with = self.with_
        return Verdict.DROP

    def render(self) -> str:
        return f"-j REJECT --reject-with {self.with_}"


@register_target("REJECT", {"--reject-with": 1})
def parse_reject(opts: Sequence[Opt], ctx: ParseCtx) -> RejectTarget:
    if not opts:
        return RejectTarget()
    kind = opts[-1].args[0]
    if kind not in REJECT_TYPES:
        known = ", ".join(sorted(set(REJECT_TYPES.values())))
        raise ctx.error(f"unknown --reject-with {kind!r}, expected one of {known}")
    full = REJECT_TYPES[kind]
    if full == "tcp-reset" and (ctx.proto != IPPROTO_TCP or ctx.inv_proto):
        raise ctx.error("--reject-with tcp-reset needs -p tcp (the kernel refuses it otherwise)")
    return RejectTarget(full)
