"""``-m hashlimit`` (net/netfilter/xt_hashlimit.c, hashlimit_mt, revision 3): one token
bucket per hash of the chosen header fields.  The buckets' fill depends on earlier traffic,
so the match is undecidable from a snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_limit import parse_rate, render_rate
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

SCALE = 1000000  # XT_HASHLIMIT_SCALE_v2
BURST = 5
GCINTERVAL = 1000
BYTE_SHIFT = 4
BYTE_EXPIRE, BYTE_EXPIRE_BURST = 15, 60
U32 = 0xFFFFFFFF
MODES = ("srcip", "srcport", "dstip", "dstport")  # print_mode() order
UNITS = (("m", 1024 * 1024), ("k", 1024), ("", 1))


def bytes_to_cost(n: int) -> int:
    return U32 // (((n >> BYTE_SHIFT) & U32) + 1)


def cost_to_bytes(cost: int) -> int:
    r = U32 // cost if cost else U32
    return (r - 1) << BYTE_SHIFT


def _factor(ch: str) -> int:
    return {"m": 1024 * 1024, "k": 1024}.get(ch, 1)


def parse_bytes(text: str) -> int | None:
    """parse_bytes(): ``N[k|m]b/s`` -> cost, or None when the text is not a byte rate."""
    pos = text.find("b/s")
    if pos <= 0:
        return None
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    if not digits or int(digits) == 0:
        return None
    return bytes_to_cost(int(digits) * _factor(text[pos - 1]))


def render_bytes(avg: int, burst: int) -> tuple[str, int]:
    """print_bytes(): the byte rate and, with a burst, ``--hashlimit-burst N[k|m]b``."""
    r = cost_to_bytes(avg)
    for name, thresh in UNITS:
        if thresh == 1 or (r >= thresh and bytes_to_cost(r & ~(thresh - 1)) == avg):
            out = f"{r // thresh}{name}b/s"
            break
    if burst == 0:
        return out, BYTE_EXPIRE * 1000
    r *= burst
    for name, thresh in UNITS:
        if thresh == 1 or r >= thresh:
            return f"{out} --hashlimit-burst {r // thresh}{name}b", BYTE_EXPIRE_BURST * 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class HashlimitMatch(Match):
    name: ClassVar[str] = "hashlimit"
    hname: str
    avg: int
    above: bool = False
    byte_mode: bool = False
    burst: int = BURST
    mode: frozenset[str] = frozenset()
    size: int = 0
    max: int = 0
    gc_interval: int = GCINTERVAL
    expire: int = 0
    srcmask: int = 32
    dstmask: int = 32
    rate_match: bool = False
    interval: int = 0

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain(f"hashlimit '{self.hname}': whether this flow's bucket is over its rate depends on the "
                         "packets seen before (not in the snapshot)")

    def render(self) -> str:
        out = ["-m hashlimit", "--hashlimit-above" if self.above else "--hashlimit-upto"]
        if self.byte_mode:
            text, quantum = render_bytes(self.avg, self.burst)
            out.append(text)
        else:
            text, quantum = render_rate(self.avg, SCALE)
            out.append(f"{text} --hashlimit-burst {self.burst}")
        if self.mode:
            out.append("--hashlimit-mode " + ",".join(m for m in MODES if m in self.mode))
        out.append(f"--hashlimit-name {self.hname}")
        if self.size:
            out.append(f"--hashlimit-htable-size {self.size}")
        if self.max:
            out.append(f"--hashlimit-htable-max {self.max}")
        if self.gc_interval != GCINTERVAL:
            out.append(f"--hashlimit-htable-gcinterval {self.gc_interval}")
        if self.expire != quantum:
            out.append(f"--hashlimit-htable-expire {self.expire}")
        if self.srcmask != 32:
            out.append(f"--hashlimit-srcmask {self.srcmask}")
        if self.dstmask != 32:
            out.append(f"--hashlimit-dstmask {self.dstmask}")
        if self.rate_match:
            out.append("--hashlimit-rate-match")
            if self.interval != 1:
                out.append(f"--hashlimit-rate-interval {self.interval}")
        return " ".join(out)


OPTIONS = {"--hashlimit-upto": 1, "--hashlimit-above": 1, "--hashlimit": 1, "--hashlimit-srcmask": 1,
           "--hashlimit-dstmask": 1, "--hashlimit-burst": 1, "--hashlimit-htable-size": 1,
           "--hashlimit-htable-max": 1, "--hashlimit-htable-gcinterval": 1, "--hashlimit-htable-expire": 1,
           "--hashlimit-mode": 1, "--hashlimit-name": 1, "--hashlimit-rate-match": 0,
           "--hashlimit-rate-interval": 1}


@register_match("hashlimit", OPTIONS)
def parse_hashlimit(opts: Sequence[Opt], ctx: ParseCtx) -> HashlimitMatch:
    kw: dict[str, object] = {}
    mult = 1
    burst_text: str | None = None
    expire_given = False
    for o in opts:
        a = o.args[0] if o.args else ""
        if o.invert and o.name not in ("--hashlimit-upto", "--hashlimit-above", "--hashlimit"):
            raise ctx.error(f"hashlimit: option \"{o.name}\" cannot be inverted")
        if o.name in ("--hashlimit-upto", "--hashlimit", "--hashlimit-above"):
            kw["above"] = (o.name == "--hashlimit-above") != o.invert
            cost = parse_bytes(a)
            if cost is not None:
                kw["avg"], kw["byte_mode"], mult = cost, True, BYTE_EXPIRE
            else:
                kw["avg"], mult = parse_rate(a, ctx, o.name, SCALE)
                kw["byte_mode"] = False
        elif o.name == "--hashlimit-burst":
            burst_text = a
        elif o.name == "--hashlimit-mode":
            parts = a.replace("|", ",").split(",")
            if any(p not in MODES for p in parts):
                raise ctx.error(f"hashlimit: bad --hashlimit-mode {a!r}, expected srcip,srcport,dstip,dstport")
            kw["mode"] = frozenset(parts)
        elif o.name == "--hashlimit-name":
            kw["hname"] = a
        elif o.name in ("--hashlimit-srcmask", "--hashlimit-dstmask"):
            kw[o.name[12:]] = parse_int(a, ctx, o.name, 0, 32)
        elif o.name == "--hashlimit-htable-size":
            kw["size"] = parse_int(a, ctx, o.name)
        elif o.name == "--hashlimit-htable-max":
            kw["max"] = parse_int(a, ctx, o.name)
        elif o.name == "--hashlimit-htable-gcinterval":
            kw["gc_interval"] = parse_int(a, ctx, o.name)
        elif o.name == "--hashlimit-htable-expire":
            kw["expire"], expire_given = parse_int(a, ctx, o.name), True
        elif o.name == "--hashlimit-rate-match":
            kw["rate_match"] = True
        else:
            kw["interval"] = parse_int(a, ctx, o.name, 1)
    if "avg" not in kw:
        raise ctx.error("hashlimit: you have to specify --hashlimit-upto or --hashlimit-above")
    if "hname" not in kw:
        raise ctx.error("hashlimit: option \"--hashlimit-name\" must be specified")
    avg = int(kw["avg"])  # type: ignore[call-overload]
    if not expire_given:
        kw["expire"] = mult * 1000
    if kw.get("byte_mode"):
        burst = 0
        if burst_text is not None:
            total = _burst(burst_text, ctx)
            unit = cost_to_bytes(avg)
            if total < unit:
                raise ctx.error(f"hashlimit: burst cannot be smaller than {unit}b")
            burst = -(-total // unit)
            if not expire_given:
                kw["expire"] = BYTE_EXPIRE_BURST * 1000
        kw["burst"] = burst
    elif burst_text is not None:
        kw["burst"] = _burst(burst_text, ctx)
        if int(kw["burst"]) > 1000000:  # type: ignore[call-overload]
            raise ctx.error("hashlimit: bad value for option \"--hashlimit-burst\", or out of range (1-1000000).")
    if kw.get("rate_match"):
        if not kw.get("byte_mode"):
            kw["avg"] = avg // mult
        if not kw.get("interval"):
            kw["interval"] = 1 if kw.get("byte_mode") else mult
    return HashlimitMatch(**kw)  # type: ignore[arg-type]


def _burst(text: str, ctx: ParseCtx) -> int:
    digits = text.rstrip("kmb")
    if not digits.isdigit() or int(digits) == 0:
        raise ctx.error(f"hashlimit: bad value for option \"--hashlimit-burst\": {text!r}")
    suffix = text[len(digits):]
    return int(digits) * _factor(suffix[:1])
