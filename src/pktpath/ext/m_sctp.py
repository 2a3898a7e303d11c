"""``-m sctp`` (net/netfilter/xt_sctp.c, sctp_mt): SCTP ports and chunk types.  Ports are
decided; chunk types are not (a packet description carries no chunk list)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_SCTP, Skb, XtParams
from pktpath.ext.m_tcp import check_proto, port_in
from pktpath.ext.ports import parse_range, render_range
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

# libxt_sctp's sctp_chunk_names: name -> (type, valid flag letters by bit 7..0)
CHUNKS = {
    "DATA": (0, "----IUBE"), "INIT": (1, "--------"), "INIT_ACK": (2, "--------"), "SACK": (3, "--------"),
    "HEARTBEAT": (4, "--------"), "HEARTBEAT_ACK": (5, "--------"), "ABORT": (6, "-------T"),
    "SHUTDOWN": (7, "--------"), "SHUTDOWN_ACK": (8, "--------"), "ERROR": (9, "--------"),
    "COOKIE_ECHO": (10, "--------"), "COOKIE_ACK": (11, "--------"), "ECN_ECNE": (12, "--------"),
    "ECN_CWR": (13, "--------"), "SHUTDOWN_COMPLETE": (14, "-------T"), "I_DATA": (64, "----IUBE"),
    "RE_CONFIG": (130, "--------"), "PAD": (132, "--------"), "ASCONF": (193, "--------"),
    "ASCONF_ACK": (128, "--------"), "FORWARD_TSN": (192, "--------"), "I_FORWARD_TSN": (194, "--------"),
}
BY_TYPE = {t: (name, flags) for name, (t, flags) in CHUNKS.items()}


@dataclass(frozen=True, slots=True)
class SctpMatch(Match):
    name: ClassVar[str] = "sctp"
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    inv_sport: bool = False
    inv_dport: bool = False
    chunk_match: str | None = None  # any | all | only
    chunks: tuple[tuple[int, str], ...] | None = None  # (type, flag letters as given); None: ALL
    inv_chunks: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if par.fragoff or skb.proto != IPPROTO_SCTP:
            return False
        if not port_in(skb.sport, self.sport, self.inv_sport) or not port_in(skb.dport, self.dport, self.inv_dport):
            return False
        if self.chunk_match is not None:
            return Uncertain("sctp --chunk-types: the packet's chunk list is not in the packet description")
        return True

    def render(self) -> str:
        out = ["-m sctp"]
        if self.sport:
            out.append(("! " if self.inv_sport else "") + "--sport " + render_range(self.sport))
        if self.dport:
            out.append(("! " if self.inv_dport else "") + "--dport " + render_range(self.dport))
        if self.chunk_match is not None:
            if self.chunks is None:
                listing = "ALL"
            elif not self.chunks:
                listing = "NONE"
            else:
                listing = ",".join(BY_TYPE[t][0] + (":" + f if f else "") for t, f in sorted(self.chunks))
            out.append(("! " if self.inv_chunks else "") + f"--chunk-types {self.chunk_match} {listing}")
        return " ".join(out)


def _flags(letters: str, valid: str, ctx: ParseCtx) -> str:
    seen: dict[int, str] = {}
    for ch in letters:
        pos = valid.find(ch.upper())
        if pos < 0 or ch == "-":
            raise ctx.error(f"sctp: invalid flag {ch!r} for this chunk type")
        seen[pos] = ch
    return "".join(seen[p] for p in sorted(seen))


def parse_chunks(text: str, ctx: ParseCtx) -> tuple[tuple[int, str], ...] | None:
    if text.upper() == "ALL":
        return None
    if text.upper() == "NONE":
        return ()
    out: dict[int, str] = {}
    for part in text.split(","):
        name, _, flags = part.partition(":")
        spec = CHUNKS.get(name.upper())
        if spec is None:
            raise ctx.error(f"Unknown sctp chunk `{name}'")
        out[spec[0]] = _flags(flags, spec[1], ctx) if flags else ""
    return tuple(sorted(out.items()))


@register_match("sctp", {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1,
                         "--chunk-types": 2})
def parse_sctp(opts: Sequence[Opt], ctx: ParseCtx) -> SctpMatch:
    check_proto(ctx, IPPROTO_SCTP, "sctp")
    kw: dict[str, object] = {}
    for o in opts:
        if o.name in ("--sport", "--source-port"):
            kw["sport"], kw["inv_sport"] = parse_range(o.args[0], ctx, "sctp"), o.invert
        elif o.name in ("--dport", "--destination-port"):
            kw["dport"], kw["inv_dport"] = parse_range(o.args[0], ctx, "sctp"), o.invert
        else:
            kind = o.args[0].lower()
            if kind not in ("any", "all", "only"):
                raise ctx.error(f"sctp: --chunk-types expects any, all or only, got {o.args[0]!r}")
            kw["chunk_match"], kw["chunks"], kw["inv_chunks"] = kind, parse_chunks(o.args[1], ctx), o.invert
    return SctpMatch(**kw)  # type: ignore[arg-type]
