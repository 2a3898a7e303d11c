"""``-m physdev`` (net/netfilter/xt_physdev.c, physdev_mt): the bridge ports of a bridged
packet.  pktpath does not simulate br_netfilter yet, so every packet takes the kernel's
``!nf_bridge_info_exists(skb)`` branch: the rule matches only if every option is inverted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult

IFNAMSIZ = 16


@dataclass(frozen=True, slots=True)
class PhysdevMatch(Match):
    name: ClassVar[str] = "physdev"
    physin: str | None = None
    physout: str | None = None
    is_in: bool = False
    is_out: bool = False
    is_bridged: bool = False
    inv_in: bool = False
    inv_out: bool = False
    inv_is_in: bool = False
    inv_is_out: bool = False
    inv_bridged: bool = False

    def valid_hooks(self) -> frozenset[Hook] | None:
        if (self.physout is not None or self.is_out) and (not self.is_bridged or self.inv_bridged):
            # physdev_mt_check(): --physdev-out/--physdev-is-out only for bridged traffic, not in OUTPUT.
            return frozenset(Hook) - {Hook.OUTPUT}
        return None

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        given = ((self.is_bridged, self.inv_bridged), (self.is_in, self.inv_is_in), (self.is_out, self.inv_is_out),
                 (self.physin is not None, self.inv_in), (self.physout is not None, self.inv_out))
        return all(inv for used, inv in given if used)

    def render(self) -> str:
        out = ["-m physdev"]
        if self.is_in:
            out.append(("! " if self.inv_is_in else "") + "--physdev-is-in")
        if self.physin is not None:
            out.append(("! " if self.inv_in else "") + f"--physdev-in {self.physin}")
        if self.is_out:
            out.append(("! " if self.inv_is_out else "") + "--physdev-is-out")
        if self.physout is not None:
            out.append(("! " if self.inv_out else "") + f"--physdev-out {self.physout}")
        if self.is_bridged:
            out.append(("! " if self.inv_bridged else "") + "--physdev-is-bridged")
        return " ".join(out)


@register_match("physdev", {"--physdev-in": 1, "--physdev-out": 1, "--physdev-is-in": 0, "--physdev-is-out": 0,
                            "--physdev-is-bridged": 0})
def parse_physdev(opts: Sequence[Opt], ctx: ParseCtx) -> PhysdevMatch:
    kw: dict[str, object] = {}
    names = {"--physdev-in": ("physin", "inv_in"), "--physdev-out": ("physout", "inv_out"),
             "--physdev-is-in": ("is_in", "inv_is_in"), "--physdev-is-out": ("is_out", "inv_is_out"),
             "--physdev-is-bridged": ("is_bridged", "inv_bridged")}
    for o in opts:
        key, inv = names[o.name]
        if o.args:
            if len(o.args[0]) >= IFNAMSIZ:
                raise ctx.error(f"physdev: interface name {o.args[0]!r} must be shorter than {IFNAMSIZ} characters")
            kw[key] = o.args[0]
        else:
            kw[key] = True
        kw[inv] = o.invert
    if not kw:
        raise ctx.error("physdev: at least one option is required")
    m = PhysdevMatch(**kw)  # type: ignore[arg-type]
    hooks = m.valid_hooks()
    if hooks is not None and ctx.chain == "OUTPUT":
        raise ctx.error("physdev: --physdev-out and --physdev-is-out are only supported in the FORWARD and "
                        "POSTROUTING chains with bridged traffic (the kernel refuses them in OUTPUT)")
    return m
