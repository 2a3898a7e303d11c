"""``-m time`` (net/netfilter/xt_time.c, time_mt): the wall clock when the packet arrives.

The clock is outside the snapshot, so the match is undecidable; it is parsed and rendered
exactly as iptables-save prints it (dates in UTC, the 2038 default --datestop included)."""

from __future__ import annotations

import calendar
import re
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ALL_WEEKDAYS = frozenset(range(1, 8))
ALL_MONTHDAYS = frozenset(range(1, 32))
MAX_DAYTIME = 24 * 3600 - 1
INT_MAX = 2**31 - 1
DATE_RE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:T(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?)?)?)?$")
TIME_RE = re.compile(r"^(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?$")


@dataclass(frozen=True, slots=True)
class TimeMatch(Match):
    name: ClassVar[str] = "time"
    daytime_start: int = 0
    daytime_stop: int = MAX_DAYTIME
    weekdays: frozenset[int] = ALL_WEEKDAYS
    monthdays: frozenset[int] = ALL_MONTHDAYS
    date_start: int = 0
    date_stop: int = INT_MAX
    kerneltz: bool = False
    contiguous: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain("time: depends on the wall clock when the packet passes (not in the snapshot)")

    def render(self) -> str:
        out = ["-m time"]
        if self.daytime_start != 0 or self.daytime_stop != MAX_DAYTIME:
            out.append(f"--timestart {_hms(self.daytime_start)} --timestop {_hms(self.daytime_stop)}")
        if self.monthdays != ALL_MONTHDAYS:
            out.append("--monthdays " + ",".join(str(d) for d in sorted(self.monthdays)))
        if self.weekdays != ALL_WEEKDAYS:
            out.append("--weekdays " + ",".join(DAY_NAMES[d - 1] for d in sorted(self.weekdays)))
        for opt, value in (("--datestart", self.date_start), ("--datestop", self.date_stop)):
            if value != 0:
                out.append(f"{opt} " + _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(value)))
        if self.kerneltz:
            out.append("--kerneltz")
        if self.contiguous:
            out.append("--contiguous")
        return " ".join(out)


def _hms(secs: int) -> str:
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def _daytime(text: str, ctx: ParseCtx, what: str) -> int:
    m = TIME_RE.match(text)
    if not m:
        raise ctx.error(f"time: invalid time {text!r} for {what}, expected hh:mm[:ss]")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        raise ctx.error(f"time: invalid time {text!r} for {what}")
    return h * 3600 + mi * 60 + s


def _date(text: str, ctx: ParseCtx, what: str) -> int:
    m = DATE_RE.match(text)
    if not m:
        raise ctx.error(f"time: invalid date {text!r} for {what}, expected YYYY[-MM[-DD[Thh[:mm[:ss]]]]]")
    y, mo, d, h, mi, s = (int(g) if g else dflt for g, dflt in zip(m.groups(), (1970, 1, 1, 0, 0, 0), strict=True))
    try:
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        raise ctx.error(f"time: invalid date {text!r} for {what}") from None


def _days(text: str, ctx: ParseCtx, names: bool, hi: int) -> frozenset[int]:
    out = set()
    for part in text.split(","):
        if part.isdigit() and 1 <= int(part) <= hi:
            out.add(int(part))
        elif names and part[:3].capitalize() in DAY_NAMES and len(part) >= 2:
            out.add(DAY_NAMES.index(part[:3].capitalize()) + 1)
        else:
            raise ctx.error(f"time: invalid day {part!r}")
    return frozenset(out)


@register_match("time", {"--timestart": 1, "--timestop": 1, "--weekdays": 1, "--monthdays": 1,
                         "--datestart": 1, "--datestop": 1, "--kerneltz": 0, "--localtz": 0, "--utc": 0,
                         "--contiguous": 0})
def parse_time(opts: Sequence[Opt], ctx: ParseCtx) -> TimeMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.invert and o.name not in ("--weekdays", "--monthdays"):
            raise ctx.error(f"time: option \"{o.name}\" cannot be inverted.")
        if o.name == "--timestart":
            kw["daytime_start"] = _daytime(o.args[0], ctx, o.name)
        elif o.name == "--timestop":
            kw["daytime_stop"] = _daytime(o.args[0], ctx, o.name)
        elif o.name == "--weekdays":
            days = _days(o.args[0], ctx, True, 7)
            kw["weekdays"] = ALL_WEEKDAYS - days if o.invert else days
        elif o.name == "--monthdays":
            days = _days(o.args[0], ctx, False, 31)
            kw["monthdays"] = ALL_MONTHDAYS - days if o.invert else days
        elif o.name == "--datestart":
            kw["date_start"] = _date(o.args[0], ctx, o.name)
        elif o.name == "--datestop":
            kw["date_stop"] = _date(o.args[0], ctx, o.name)
        elif o.name in ("--kerneltz", "--localtz"):
            kw["kerneltz"] = True
        elif o.name == "--utc":
            kw["kerneltz"] = False
        else:
            kw["contiguous"] = True
    m = TimeMatch(**kw)  # type: ignore[arg-type]
    if m.contiguous and m.daytime_stop >= m.daytime_start:
        raise ctx.error("time: --contiguous only makes sense when stoptime is smaller than starttime")
    return m
