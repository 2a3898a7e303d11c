"""The documented example questions (tests/unit/test_examples.py) replayed through the real kernel.

The sandbox rebuilds each example snapshot in network namespaces, sends the packet and records
what the kernel logged (TRACE) and did with it. That is compared with pktpath's
``--format json`` the way ../shared/kernel-cases/check/compare.py compares: the trace ids in
order, each with iif/oif/src/dst/proto/sport/dport/mark; the disposition; the oif of a
forwarded or sent packet; result.packet. The examples have no TRACE rule of their own (the
sandbox inserts one), so pktpath's trace is only stripped of a leading entry when that entry
really is a ``-j TRACE`` rule.

Where pktpath reports several fates (kube-proxy's random endpoint choice), the kernel's run
must agree with one of them: the path it is compared with is the one with the fewest
differences.

A source port the kernel picks at random (``MASQUERADE --random-fully``, kube-proxy's and
Calico's masquerade: get_unique_tuple() skips its "keep the original port" shortcuts) is listed
by pktpath in ``result.uncertain`` and is not compared.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli
from pktpath.sandbox import KernelRun, Sandbox, compare

pytestmark = pytest.mark.kernel


def _load_table() -> Any:
    """The case table of tests/unit/test_examples.py (tests are not a package)."""
    path = Path(__file__).resolve().parents[1] / "unit" / "test_examples.py"
    spec = importlib.util.spec_from_file_location("pktpath_examples_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


TABLE = _load_table()
TRACES = [c for c in TABLE.CASES if c.command == "trace"]
FLOWS = [c for c in TABLE.CASES if c.command == "flow"]
RunTrace = Callable[..., KernelRun]

def pktpath_json(case: Any) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [case.command, str(case.snapshot), *case.argv, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


def starts_with_trace_rule(trace: Sequence[Mapping[str, Any]]) -> bool:
    return bool(trace) and "-j TRACE" in str(trace[0].get("rule") or "")


def differences(run: KernelRun, trace: Sequence[Mapping[str, Any]], result: Mapping[str, Any],
                local: bool) -> list[str]:
    return compare({"trace": run.trace, "result": run.result}, trace, result, local=local,
                   strip=starts_with_trace_rule(trace))


def settle(diffs: list[str], path: Mapping[str, Any]) -> list[str]:
    """A port pktpath reports as chosen at random by the kernel (result.uncertain) is not compared."""
    random = set(path["result"].get("uncertain", []))
    return [d for d in diffs if not any(d.startswith(f"result.packet.{f}:") for f in random)]


def relevant(warnings: Sequence[str]) -> list[str]:
    """Sandbox warnings, without IPv6 routes (home-router's dump has some; pktpath is IPv4-only)."""
    return [w for w in warnings if not (w.startswith("route not reproduced") and ("::" in w or "fe80" in w))]


def describe(run: KernelRun, path: Mapping[str, Any], diffs: list[str]) -> str:
    return "\n".join([*diffs, "kernel:  " + " ".join(e["id"] for e in run.trace), "pktpath: "
                      + " ".join(e["id"] for e in path["trace"]), f"kernel result: {run.result}",
                      f"pktpath result: {path['result']}"])


@pytest.mark.parametrize("case", TRACES, ids=[c.id for c in TRACES])
def test_trace_agrees_with_kernel(kernel_sandbox: RunTrace, case: Any) -> None:
    out = pktpath_json(case)
    run = kernel_sandbox(case.snapshot, case.argv)
    assert relevant(run.evidence["warnings"]) == []
    local = "--local" in case.argv
    per_path = [differences(run, p["trace"], p["result"], local) for p in out["paths"]]
    best = min(range(len(per_path)), key=lambda i: len(per_path[i]))
    path = out["paths"][best]
    diffs = settle(per_path[best], path)
    assert diffs == [], describe(run, path, diffs)


def packet_args(packet: Mapping[str, Any]) -> list[str]:
    """``pktpath trace`` arguments for one packet of a flow (its header as it enters the host)."""
    args = ["--iif", packet["iif"]] if packet.get("iif") else ["--local"]
    args += ["--src", packet["src"], "--dst", packet["dst"], "--proto", packet["proto"]]
    for key in ("sport", "dport"):
        if packet.get(key) is not None:
            args += [f"--{key}", str(packet[key])]
    if packet.get("tcp_flags"):
        args += ["--tcp-flags", str(packet["tcp_flags"])]
    return args


@pytest.mark.parametrize("case", FLOWS, ids=[c.id for c in FLOWS])
def test_flow_agrees_with_kernel(kernel_sandbox: RunTrace, case: Any) -> None:
    """Each packet of the exchange, sent through one sandbox so that they share conntrack."""
    out = pktpath_json(case)
    with Sandbox(case.snapshot) as sandbox:
        assert relevant(sandbox.host.warnings) == []
        for packet in out["packets"]:
            run = sandbox.send(packet_args(packet["packet"]))
            diffs = settle(differences(run, packet["trace"], packet["result"], packet["packet"].get("iif") is None),
                           packet)
            assert diffs == [], f"packet {packet['step']}:\n" + describe(run, packet, diffs)
