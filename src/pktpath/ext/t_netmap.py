"""``-j NETMAP`` (net/netfilter/xt_NETMAP.c, netmap_tg4): 1:1 prefix mapping.  In
PREROUTING/OUTPUT the destination's network part is replaced, in POSTROUTING/INPUT the
source's; the host bits are kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.addr import Prefix, int_to_ip
from pktpath.model.nat import NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NatRange
from pktpath.model.xtables import Target, Verdict

U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class NetmapTarget(Target):
    name: ClassVar[str] = "NETMAP"
    tables: ClassVar[frozenset[str] | None] = frozenset({"nat"})
    needs_conntrack: ClassVar[bool] = True
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.PREROUTING, Hook.POSTROUTING, Hook.OUTPUT, Hook.INPUT})
    to: Prefix

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        netmask = self.to.mask
        dst_side = par.hook in (Hook.PREROUTING, Hook.OUTPUT)
        old = skb.dst if dst_side else skb.src
        new = (old & ~netmask & U32) | (self.to.addr & netmask)
        manip = NF_NAT_MANIP_DST if dst_side else NF_NAT_MANIP_SRC
        return par.host.nat_setup(skb, NatRange(new, new), manip,
                                  f"NETMAP {'destination' if dst_side else 'source'} {int_to_ip(old)} -> "
                                  f"{int_to_ip(new)} ({self.to})")

    def render(self) -> str:
        return f"-j NETMAP --to {self.to}"


@register_target("NETMAP", {"--to": 1})
def parse_netmap(opts: Sequence[Opt], ctx: ParseCtx) -> NetmapTarget:
    if not opts:
        raise ctx.error("NETMAP: option \"--to\" must be specified")
    text = opts[-1].args[0]
    _, sep, mask = text.partition("/")
    if sep and not mask.isdigit():
        raise ctx.unsupported("NETMAP --to with a dotted netmask (iptables saves it as something else); "
                              "write ADDRESS/PREFIXLEN")
    try:
        to = Prefix.parse(text)
    except ValueError:
        raise ctx.error(f"NETMAP: bad --to {text!r}, expected ADDRESS[/PREFIXLEN]") from None
    return NetmapTarget(to)
