"""``-m dccp`` (net/netfilter/xt_dccp.c, dccp_mt): DCCP ports (decided), packet types and
options (not in a packet description: undecidable)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_tcp import check_proto, port_in
from pktpath.ext.ports import parse_range, render_range
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

IPPROTO_DCCP = 33
TYPES = ("REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET", "SYNC", "SYNCACK",
         "INVALID")


@dataclass(frozen=True, slots=True)
class DccpMatch(Match):
    name: ClassVar[str] = "dccp"
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    inv_sport: bool = False
    inv_dport: bool = False
    types: frozenset[int] | None = None
    inv_types: bool = False
    option: int | None = None
    inv_option: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto != IPPROTO_DCCP:
            return False
        if not port_in(skb.sport, self.sport, self.inv_sport) or not port_in(skb.dport, self.dport, self.inv_dport):
            return False
        if self.types is not None:
            return Uncertain("dccp --dccp-types: the DCCP packet type is not in the packet description")
        if self.option is not None:
            return Uncertain("dccp --dccp-option: the DCCP options are not in the packet description")
        return True

    def render(self) -> str:
        out = ["-m dccp"]
        if self.sport:
            out.append(("! " if self.inv_sport else "") + "--sport " + render_range(self.sport))
        if self.dport:
            out.append(("! " if self.inv_dport else "") + "--dport " + render_range(self.dport))
        if self.types is not None:
            out.append(("! " if self.inv_types else "") + "--dccp-types "
                       + ",".join(TYPES[t] for t in sorted(self.types)))
        if self.option is not None:
            out.append(("! " if self.inv_option else "") + f"--dccp-option {self.option}")
        return " ".join(out)


@register_match("dccp", {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1,
                         "--dccp-types": 1, "--dccp-option": 1})
def parse_dccp(opts: Sequence[Opt], ctx: ParseCtx) -> DccpMatch:
    check_proto(ctx, IPPROTO_DCCP, "dccp")
    kw: dict[str, object] = {}
    for o in opts:
        if o.name in ("--sport", "--source-port"):
            kw["sport"], kw["inv_sport"] = parse_range(o.args[0], ctx, "dccp"), o.invert
        elif o.name in ("--dport", "--destination-port"):
            kw["dport"], kw["inv_dport"] = parse_range(o.args[0], ctx, "dccp"), o.invert
        elif o.name == "--dccp-types":
            types = set()
            for t in o.args[0].split(","):
                if t.upper() not in TYPES:
                    raise ctx.error(f"dccp: unknown DCCP type {t!r}, expected " + ",".join(TYPES))
                types.add(TYPES.index(t.upper()))
            kw["types"], kw["inv_types"] = frozenset(types), o.invert
        else:
            kw["option"], kw["inv_option"] = parse_int(o.args[0], ctx, o.name, 0, 255), o.invert
    return DccpMatch(**kw)  # type: ignore[arg-type]
