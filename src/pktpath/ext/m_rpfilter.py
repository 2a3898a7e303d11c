"""``-m rpfilter`` (net/ipv4/netfilter/ipt_rpfilter.c, rpfilter_mt): a reverse-path lookup
of the source address, as rp_filter does but in the raw/mangle PREROUTING chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine import routing
from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult


def _zeronet(a: int) -> bool:
    """ipv4_is_zeronet(): only 0.0.0.0 since Linux 5.3 (0/8 routes as unicast)."""
    return routing.is_zeronet(a)


def _get_saddr(addr: int) -> int:
    """rpfilter_get_saddr(): multicast, limited broadcast and 0.0.0.0/8 give 0."""
    if (addr >> 28) == 0xE or addr == 0xFFFFFFFF or _zeronet(addr):
        return 0
    return addr


@dataclass(frozen=True, slots=True)
class RpfilterMatch(Match):
    name: ClassVar[str] = "rpfilter"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.PREROUTING})
    loose: bool = False
    validmark: bool = False
    accept_local: bool = False
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        from pktpath.engine import routing

        net = par.host.net
        dev = par.in_dev or ""
        link = net.link(dev)
        if skb.pkt_type == "loopback" or dev == "lo" or (link is not None and link.loopback):
            return not self.invert  # rpfilter_is_loopback()
        if _zeronet(skb.src) and (skb.dst == 0xFFFFFFFF or (skb.dst & 0xFFFFFF00) == 0xE0000000):
            return not self.invert
        flow = routing.Flow(dst=skb.src, src=_get_saddr(skb.dst), iif="lo",
                            mark=skb.mark if self.validmark else 0, tos=skb.tos, uid=0)
        res = routing.fib_lookup(net, flow, 0, ignore_linkstate=True)
        return self._reverse_ok(res, dev) ^ self.invert

    def _reverse_ok(self, res: object, dev: str) -> bool:
        """rpfilter_lookup_reverse(): a unicast (or, with --accept-local, local) route back
        through the arrival device, or any route back with --loose."""
        from pktpath.engine.routing import FibResult

        assert isinstance(res, FibResult)
        if res.error is not None or res.route is None:
            return False
        if res.route.type != "unicast" and (res.route.type != "local" or not self.accept_local):
            return False
        return any(h.dev == dev for h in res.route.nexthops) or self.loose

    def render(self) -> str:
        out = ["-m rpfilter"]
        for flag, text in ((self.loose, "--loose"), (self.validmark, "--validmark"),
                           (self.accept_local, "--accept-local"), (self.invert, "--invert")):
            if flag:
                out.append(text)
        return " ".join(out)


@register_match("rpfilter", {"--loose": 0, "--validmark": 0, "--accept-local": 0, "--invert": 0})
def parse_rpfilter(opts: Sequence[Opt], ctx: ParseCtx) -> RpfilterMatch:
    if ctx.table not in ("raw", "mangle"):
        raise ctx.error(f"rpfilter is only valid in the 'raw' or 'mangle' table, not '{ctx.table}' "
                        "(the kernel refuses it)")
    flags = {o.name for o in opts}
    if any(o.invert for o in opts):
        raise ctx.error("rpfilter: options cannot be inverted with '!'; use --invert")
    return RpfilterMatch("--loose" in flags, "--validmark" in flags, "--accept-local" in flags, "--invert" in flags)
