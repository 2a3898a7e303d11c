"""verify's comparison: line by line, first difference, which of pktpath's paths the kernel took."""

from __future__ import annotations

from typing import Any

import pytest

from pktpath.verify.compare import compare_prediction


def entry(id_: str, **kw: Any) -> dict[str, Any]:
    base = {"id": id_, "iif": "eth0", "oif": None, "src": "10.0.0.7", "dst": "10.1.0.9", "proto": "tcp",
            "sport": 40000, "dport": 80, "mark": 0}
    return {**base, **kw}


FWD: dict[str, Any] = {"disposition": "forwarded", "oif": "eth1",
                       "packet": {"src": "10.0.0.7", "dst": "10.1.0.9", "sport": 40000, "dport": 80, "mark": 0}}
DROP: dict[str, Any] = {"disposition": "dropped", "oif": None,
                        "packet": {"src": "10.0.0.7", "dst": "10.1.0.9", "mark": 0}}
KERNEL = [entry("raw:PREROUTING:rule:1"), entry("filter:FORWARD:rule:2", oif="eth1", mark=4)]


def prediction(*paths: tuple[list[dict[str, Any]], dict[str, Any], float | None]) -> dict[str, Any]:
    docs = [{"probability": p, "choices": [], "trace": t, "result": r} for t, r, p in paths]
    return {"trace": docs[0]["trace"], "result": docs[0]["result"], "paths": docs}


def test_agreement() -> None:
    c = compare_prediction(prediction((KERNEL, FWD, 1.0)), KERNEL, FWD, local=False, strip=False)
    assert c.agree and c.chosen.first is None and c.chosen.diffs == ()


@pytest.mark.parametrize(("trace", "result", "first", "differs"), [
    ([entry("raw:PREROUTING:rule:1"), entry("filter:FORWARD:policy:3", oif="eth1")], DROP, 1, ("id",)),
    ([entry("raw:PREROUTING:rule:1"), entry("filter:FORWARD:rule:2", oif="eth1", mark=5)], FWD, 1, ("mark",)),
    ([entry("raw:PREROUTING:rule:1", src="10.0.0.8"), KERNEL[1]], FWD, 0, ("src",)),
    ([KERNEL[0]], FWD, 1, ("id",)),  # pktpath misses a line
    ([*KERNEL, entry("nat:POSTROUTING:rule:1")], FWD, 2, ("id",)),  # pktpath has one more
], ids=["other-rule", "mark", "src", "missing-line", "extra-line"])
def test_first_difference_in_the_trace(trace: list[dict[str, Any]], result: dict[str, Any], first: int,
                                       differs: tuple[str, ...]) -> None:
    c = compare_prediction(prediction((trace, result, 1.0)), KERNEL, FWD, local=False, strip=False)
    assert not c.agree
    assert c.chosen.first == first
    assert c.chosen.rows[first].differs == differs


def test_first_difference_in_the_result() -> None:
    other = {**FWD, "packet": {**FWD["packet"], "sport": 1024}}
    c = compare_prediction(prediction((KERNEL, other, 1.0)), KERNEL, FWD, local=False, strip=False)
    assert c.chosen.first == len(KERNEL)
    assert c.chosen.result_differs == ("packet.sport",)


def test_kernel_took_the_second_path() -> None:
    dropped = [KERNEL[0], entry("filter:FORWARD:policy:3", oif="eth1")]
    c = compare_prediction(prediction((dropped, DROP, 0.7), (KERNEL, FWD, 0.3)), KERNEL, FWD, local=False,
                           strip=False)
    assert c.agree and c.chosen.path == 1 and c.chosen.probability == 0.3


def test_no_path_agrees_shows_the_closest() -> None:
    early = [entry("raw:PREROUTING:rule:9")]
    late = [KERNEL[0], entry("filter:FORWARD:rule:7")]
    c = compare_prediction(prediction((early, DROP, 0.5), (late, DROP, 0.5)), KERNEL, FWD, local=False,
                           strip=False)
    assert not c.agree and c.chosen.path == 1 and c.chosen.first == 1


def test_strip_the_trace_rule_entry() -> None:
    """A snapshot that starts raw PREROUTING with -j TRACE: the kernel does not log that rule."""
    with_trace_rule = [entry("raw:PREROUTING:rule:1"), *[{**e, "id": e["id"].replace("rule:1", "rule:2")}
                                                         for e in KERNEL[:1]], KERNEL[1]]
    kernel = [{**KERNEL[0], "id": "raw:PREROUTING:rule:2"}, KERNEL[1]]
    c = compare_prediction(prediction((with_trace_rule, FWD, 1.0)), kernel, FWD, local=False, strip=True)
    assert c.agree
    assert [e["id"] for e in c.chosen.trace] == ["raw:PREROUTING:rule:2", "filter:FORWARD:rule:2"]
