"""``-m connbytes`` (net/netfilter/xt_connbytes.c, connbytes_mt): the connection's packet or
byte counters.  They are known only for a connection this very packet creates (one packet
of its length in the original direction); otherwise the snapshot has no counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import CtInfo, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

U64 = 2**64 - 1
MODES = ("packets", "bytes", "avgpkt")
DIRS = ("original", "reply", "both")


@dataclass(frozen=True, slots=True)
class ConnbytesMatch(Match):
    name: ClassVar[str] = "connbytes"
    needs_conntrack: ClassVar[bool] = True
    count_from: int
    count_to: int
    mode: str
    direction: str

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        ct = skb.ct
        if ct is None:
            return False
        if not (ct.origin == "new" and skb.ctinfo == CtInfo.NEW):
            return Uncertain("connbytes: the connection's packet/byte counters are not in the snapshot")
        pkts = {"original": 1, "reply": 0, "both": 1}[self.direction]
        nbytes = skb.length if pkts else 0
        if self.mode == "packets":
            what = pkts
        elif self.mode == "bytes":
            what = nbytes
        else:
            what = nbytes // pkts if pkts else 0
        if self.count_to >= self.count_from:
            return self.count_from <= what <= self.count_to
        return what < self.count_to or what > self.count_from

    def render(self) -> str:
        inv = self.count_from > self.count_to
        lo, hi = (self.count_to, self.count_from) if inv else (self.count_from, self.count_to)
        rng = f"{lo}:{hi}" if hi and hi < U64 else str(lo)
        return (f"-m connbytes {'! ' if inv else ''}--connbytes {rng} --connbytes-mode {self.mode} "
                f"--connbytes-dir {self.direction}")


@register_match("connbytes", {"--connbytes": 1, "--connbytes-dir": 1, "--connbytes-mode": 1})
def parse_connbytes(opts: Sequence[Opt], ctx: ParseCtx) -> ConnbytesMatch:
    kw: dict[str, object] = {}
    for o in opts:
        a = o.args[0]
        if o.name == "--connbytes":
            lo, sep, hi = a.partition(":")
            try:
                first = int(lo) if lo else 0
                last = (int(hi) if hi else U64) if sep else U64
            except ValueError:
                raise ctx.error(f"connbytes: bad range {a!r}, expected FROM[:TO]") from None
            if o.invert:
                first, last = last, first
            kw["count_from"], kw["count_to"] = first, last
        elif o.invert:
            raise ctx.error(f"connbytes: option \"{o.name}\" cannot be inverted")
        elif o.name == "--connbytes-dir":
            if a not in DIRS:
                raise ctx.error(f"Unknown --connbytes-dir `{a}', expected original, reply or both")
            kw["direction"] = a
        else:
            if a not in MODES:
                raise ctx.error(f"Unknown --connbytes-mode `{a}', expected packets, bytes or avgpkt")
            kw["mode"] = a
    for key, opt in (("count_from", "--connbytes"), ("direction", "--connbytes-dir"), ("mode", "--connbytes-mode")):
        if key not in kw:
            raise ctx.error(f"connbytes: option \"{opt}\" must be specified")
    return ConnbytesMatch(**kw)  # type: ignore[arg-type]
