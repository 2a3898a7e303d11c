"""Keeps benchmarks/run.py working: build a tiny kube-proxy snapshot with it, load it and
trace its two benchmark packets in the benchmark's own worker process, render the table.

The worker runs in a fresh interpreter (as in a real benchmark run), so the stand-in
extensions it may register never leak into the other tests' extension registry."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
GEN = SHARED / "tools" / "gen-kube-proxy-ruleset"

pytestmark = pytest.mark.skipif(not GEN.exists(), reason=f"{GEN} is absent (../shared/tools beside the repo)")


def _bench() -> ModuleType:
    name = "pktpath_benchmarks_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def case_and_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, dict[str, object]]:
    run = _bench()
    case = run.build_case(20, 1, tmp_path_factory.mktemp("bench"))
    result = run.run_worker(case, 1, 1)
    assert "error" not in result, result.get("stderr")
    return case, result


def test_snapshot_is_a_kubernetes_node(case_and_result: tuple[object, dict[str, object]]) -> None:
    case, _ = case_and_result
    snap = case.snapshot  # type: ignore[attr-defined]
    for name in ("iptables-save.txt", "ip-addr.json", "ip-route.json", "ip-rule.json", "sysctl.txt"):
        assert (snap / name).is_file(), name
    links = {link["ifname"] for link in json.loads((snap / "ip-addr.json").read_text())}
    assert {"lo", "eth0", "cni0"} <= links
    assert case.packets["clusterip"]["dst"].startswith("10.")  # type: ignore[attr-defined]
    assert case.packets["clusterip"]["position"] == case.packets["clusterip"]["kube_services_rules"] - 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("packet", ["clusterip", "nodeport"], ids=["pod-to-clusterip", "external-to-nodeport"])
def test_trace_reaches_the_service_chain(case_and_result: tuple[object, dict[str, object]], packet: str) -> None:
    case, result = case_and_result
    trace = result["traces"][packet]  # type: ignore[index]
    expect = case.packets[packet]["expect_chain"]  # type: ignore[attr-defined]
    assert trace["reached_chain"], f"{packet}: the trace never entered {expect}"
    assert trace["dispositions"] == ["forwarded"]
    assert trace["paths"] >= 2  # one per endpoint (-m statistic draws)


def test_table_renders(case_and_result: tuple[object, dict[str, object]]) -> None:
    run = _bench()
    case, result = case_and_result
    n = case.services  # type: ignore[attr-defined]
    rows = run.build_rows([case], {n: result}, {n: {"error": "not measured"}}, None,
                          {"help": {"best": 0.1}, "example": {"error": "not measured"}})
    text = run.render_text(rows)
    assert "load 20 services" in text and "batch throughput" in text
    assert run.render_markdown(rows).startswith("| figure | pktpath |")
