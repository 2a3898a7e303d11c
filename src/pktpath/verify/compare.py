"""pktpath's prediction beside the kernel's run, line by line, first difference marked.

Agreement is exactly ``pktpath.sandbox.compare`` (the kernel-cases check): trace ids in
order, per entry iif oif src dst proto sport dport mark; the result's disposition, its oif
when forwarded or sent, and the packet fields the kernel could observe.  This module adds
the structure needed to show where the two part: rows, differing fields, which of
pktpath's ``paths`` the kernel took.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class PathComparison:
    path: int  # index into the prediction's ``paths``
    probability: float | None
    choices: tuple[Mapping[str, Any], ...]
    trace: tuple[Entry, ...]  # pktpath's trace as compared (TRACE rule's own entry stripped)
    result: Mapping[str, Any]
    rows: tuple[Row, ...]
    result_differs: tuple[str, ...]
    diffs: tuple[str, ...]  # pktpath.sandbox.compare's words; empty = agreement

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


def _row(i: int, got: Entry | None, want: Entry | None) -> Row:
    if got is None or want is None:
        return Row(i, got, want, ("id",))
    if got.get("id") != want.get("id"):
        return Row(i, got, want, ("id",))
    return Row(i, got, want, tuple(f for f in FIELDS if _norm(f, got.get(f)) != _norm(f, want.get(f))))


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
    got = strip_trace_rule(trace, local) if strip else trace
    rows = tuple(_row(i, got[i] if i < len(got) else None, kernel_trace[i] if i < len(kernel_trace) else None)
                 for i in range(max(len(got), len(kernel_trace))))
    diffs = sandbox_compare({"trace": list(kernel_trace), "result": kernel_result}, trace, result,
                            local=local, strip=strip)
    return PathComparison(index, path.get("probability"), tuple(path.get("choices") or ()), tuple(got), result,
                          rows, result_differences(kernel_result, result), tuple(diffs))


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
