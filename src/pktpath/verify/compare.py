"""pktpath's prediction beside the kernel's run, line by line, first difference marked.

Agreement is ``pktpath.sandbox.compare`` (the kernel-cases check): trace ids in order, per
entry iif oif src dst proto sport dport mark; the result's disposition, its oif when
forwarded or sent, and the packet fields the kernel could observe -- except a field pktpath
declares random (``result.uncertain``, e.g. a source port SNAT draws from a range): there
the kernel may differ, as long as its value lies in the range pktpath's events name.  This
module adds the structure needed to show where the two part: rows, differing fields, which
of pktpath's ``paths`` the kernel took.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pktpath.sandbox import compare as sandbox_compare
from pktpath.sandbox.compare import FIELDS, PACKET_FIELDS, _norm, strip_trace_rule

Entry = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One trace line: pktpath's entry, the kernel's, and what differs (``id`` or fields)."""

    index: int
    pktpath: Entry | None
    kernel: Entry | None
    differs: tuple[str, ...]
    random: tuple[str, ...] = ()  # fields that differ where pktpath says the kernel draws at random


@dataclass(frozen=True)
class PathComparison:
    path: int  # index into the prediction's ``paths``
    probability: float | None
    choices: tuple[Mapping[str, Any], ...]
    trace: tuple[Entry, ...]  # pktpath's trace as compared (TRACE rule's own entry stripped)
    result: Mapping[str, Any]
    rows: tuple[Row, ...]
    result_differs: tuple[str, ...]
    diffs: tuple[str, ...]  # pktpath.sandbox.compare's words, minus tolerated random fields; empty = agreement
    random: tuple[str, ...] = ()  # random fields the kernel drew differently (tolerated)

    @property
    def agree(self) -> bool:
        return not self.diffs

    @property
    def first(self) -> int | None:
        """Index of the first differing row; len(rows) when only the result differs."""
        for row in self.rows:
            if row.differs:
                return row.index
        return len(self.rows) if self.result_differs or self.diffs else None


RANDOM_RANGE = re.compile(r"(source|destination) port: the kernel picks one at random in (\d+)-(\d+)")
Ranges = dict[str, tuple[int, int]]


def random_ranges(events: Sequence[Mapping[str, Any]]) -> Ranges:
    """The ranges pktpath's events say the kernel draws a port from (field -> (lo, hi))."""
    out: Ranges = {}
    for e in events:
        m = RANDOM_RANGE.search(str(e.get("message", "")))
        if m:
            out["sport" if m.group(1) == "source" else "dport"] = (int(m.group(2)), int(m.group(3)))
    return out


class _Tolerance:
    """Which differing fields are pktpath's declared random draws (``result.uncertain``)."""

    def __init__(self, uncertain: Sequence[str], ranges: Ranges) -> None:
        self.uncertain = set(uncertain)
        self.ranges = ranges

    def __call__(self, f: str, kernel_value: Any) -> bool:
        if f not in self.uncertain:
            return False
        if f not in self.ranges:
            return True
        lo, hi = self.ranges[f]
        return isinstance(kernel_value, int) and lo <= kernel_value <= hi


def _row(i: int, got: Entry | None, want: Entry | None, tolerated: _Tolerance) -> Row:
    if got is None or want is None:
        return Row(i, got, want, ("id",))
    if got.get("id") != want.get("id"):
        return Row(i, got, want, ("id",))
    differ = [f for f in FIELDS if _norm(f, got.get(f)) != _norm(f, want.get(f))]
    random = tuple(f for f in differ if tolerated(f, _norm(f, want.get(f))))
    return Row(i, got, want, tuple(f for f in differ if f not in random), random)


def result_differences(kernel: Mapping[str, Any], got: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    if got.get("disposition") != kernel.get("disposition"):
        out.append("disposition")
    if kernel.get("disposition") in ("forwarded", "sent") and got.get("oif") != kernel.get("oif"):
        out.append("oif")
    gp = got.get("packet") if isinstance(got.get("packet"), Mapping) else {}
    kp = kernel.get("packet") if isinstance(kernel.get("packet"), Mapping) else {}
    assert isinstance(gp, Mapping) and isinstance(kp, Mapping)
    out += [f"packet.{f}" for f in PACKET_FIELDS if f in kp and _norm(f, gp.get(f)) != _norm(f, kp[f])]
    return tuple(out)


def compare_path(index: int, path: Mapping[str, Any], kernel_trace: Sequence[Entry],
                 kernel_result: Mapping[str, Any], *, local: bool, strip: bool) -> PathComparison:
    trace = list(path.get("trace") or [])
    result = path.get("result") or {}
    tolerated = _Tolerance(result.get("uncertain") or (), random_ranges(path.get("events") or []))
    got = strip_trace_rule(trace, local) if strip else trace
    rows = tuple(_row(i, got[i] if i < len(got) else None, kernel_trace[i] if i < len(kernel_trace) else None,
                      tolerated)
                 for i in range(max(len(got), len(kernel_trace))))
    kp = kernel_result.get("packet") if isinstance(kernel_result.get("packet"), Mapping) else {}
    assert isinstance(kp, Mapping)
    res = result_differences(kernel_result, result)
    random_result = tuple(f for f in res if f.startswith("packet.") and tolerated(f[7:], _norm(f[7:], kp.get(f[7:]))))
    random = tuple(dict.fromkeys([f for r in rows for f in r.random] + [f[7:] for f in random_result]))
    diffs = [d for d in sandbox_compare({"trace": list(kernel_trace), "result": kernel_result}, trace, result,
                                        local=local, strip=strip) if not _about(d, random)]
    return PathComparison(index, path.get("probability"), tuple(path.get("choices") or ()), tuple(got), result,
                          rows, tuple(f for f in res if f not in random_result), tuple(diffs), random)


def _about(diff: str, fields: Sequence[str]) -> bool:
    """Is this pktpath.sandbox.compare line about one of ``fields`` only?"""
    return any(re.search(rf"(: {f}=|^result\.packet\.{f}:)", diff) for f in fields)


@dataclass(frozen=True)
class Comparison:
    chosen: PathComparison  # the path the kernel took, or the one agreeing longest
    paths: tuple[PathComparison, ...] = field(default=())

    @property
    def agree(self) -> bool:
        return self.chosen.agree


def compare_prediction(prediction: Mapping[str, Any], kernel_trace: Sequence[Entry],
                       kernel_result: Mapping[str, Any], *, local: bool, strip: bool) -> Comparison:
    """Compare every path pktpath predicted; the kernel agrees when it took one of them."""
    paths = list(prediction.get("paths") or [{"probability": 1.0, "choices": [], "trace": prediction["trace"],
                                              "result": prediction["result"]}])
    done = tuple(compare_path(i, p, kernel_trace, kernel_result, local=local, strip=strip)
                 for i, p in enumerate(paths))
    agreeing = [c for c in done if c.agree]
    if agreeing:
        return Comparison(agreeing[0], done)

    def reach(c: PathComparison) -> tuple[int, int]:
        first = c.first if c.first is not None else len(c.rows) + 1
        return (first, -c.path)

    return Comparison(max(done, key=reach), done)
