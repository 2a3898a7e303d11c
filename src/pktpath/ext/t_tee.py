"""``-j TEE`` (net/netfilter/xt_TEE.c, tee_tg4 -> nf_dup_ipv4): sends a clone to
``--gateway`` and lets the original continue.  The clone's path is not followed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.addr import int_to_ip, ip_to_int
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class TeeTarget(Target):
    name: ClassVar[str] = "TEE"
    gateway: int
    oif: str | None = None

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"TEE: a clone is sent to {int_to_ip(self.gateway)}"
                         + (f" through {self.oif}" if self.oif else "") + " (its path is not followed)")
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j TEE --gateway {int_to_ip(self.gateway)}" + (f" --oif {self.oif}" if self.oif else "")


@register_target("TEE", {"--gateway": 1, "--oif": 1})
def parse_tee(opts: Sequence[Opt], ctx: ParseCtx) -> TeeTarget:
    gw: int | None = None
    oif = None
    for o in opts:
        if o.name == "--gateway":
            try:
                gw = ip_to_int(o.args[0])
            except ValueError:
                raise ctx.error(f"TEE: bad --gateway {o.args[0]!r}, expected an IPv4 address") from None
        else:
            oif = o.args[0]
    if gw is None:
        raise ctx.error("TEE: option \"--gateway\" must be specified")
    return TeeTarget(gw, oif)
