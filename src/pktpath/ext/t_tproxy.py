"""``-j TPROXY`` (net/netfilter/xt_TPROXY.c, tproxy_tg4_v1): diverts the packet to a local
transparent socket on ``--on-ip``/``--on-port`` without changing its addresses, setting the
mark per ``--tproxy-mark`` and returning NF_ACCEPT.  Sockets are not in the snapshot: the
simulation assumes such a socket listens; with none, the kernel drops the packet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, IPPROTO_UDP, Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, parse_value_mask, register_target
from pktpath.model.addr import int_to_ip, ip_to_int
from pktpath.model.xtables import Target, Verdict

FULL = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class TproxyTarget(Target):
    name: ClassVar[str] = "TPROXY"
    tables: ClassVar[frozenset[str] | None] = frozenset({"mangle"})
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.PREROUTING})
    port: int
    addr: int = 0
    mark: int = 0
    mask: int = 0

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        laddr = int_to_ip(self.addr) if self.addr else "the address of the input device"
        lport = self.port or skb.dport
        skb.mark = ((skb.mark & ~self.mask) ^ self.mark) & FULL
        skb.notes.append(f"TPROXY: diverted to a transparent socket on {laddr}:{lport}, mark set to {skb.mark:#x} "
                         "(assumes such a socket listens: with none the kernel drops the packet)")
        return Verdict.ACCEPT

    def render(self) -> str:
        return (f"-j TPROXY --on-port {self.port} --on-ip {int_to_ip(self.addr)} "
                f"--tproxy-mark {self.mark:#x}/{self.mask:#x}")


@register_target("TPROXY", {"--on-port": 1, "--on-ip": 1, "--tproxy-mark": 1})
def parse_tproxy(opts: Sequence[Opt], ctx: ParseCtx) -> TproxyTarget:
    if ctx.proto not in (IPPROTO_TCP, IPPROTO_UDP) or ctx.inv_proto:
        raise ctx.error("TPROXY: can be used only with -p tcp or -p udp (the kernel refuses it otherwise)")
    kw: dict[str, int] = {}
    for o in opts:
        if o.name == "--on-port":
            kw["port"] = parse_int(o.args[0], ctx, o.name, 0, 65535)
        elif o.name == "--on-ip":
            try:
                kw["addr"] = ip_to_int(o.args[0])
            except ValueError:
                raise ctx.error(f"TPROXY: bad --on-ip {o.args[0]!r}") from None
        else:
            kw["mark"], kw["mask"] = parse_value_mask(o.args[0], ctx, o.name)
    if "port" not in kw:
        raise ctx.error("TPROXY: option \"--on-port\" must be specified")
    return TproxyTarget(**kw)
