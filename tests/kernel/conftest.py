"""Fixtures for tests against the real kernel (root, network namespaces, iptables-legacy).

``kernel_sandbox`` skips when the machine cannot run the sandbox -- except in CI
(``CI=true``), where a missing sandbox is a failure, never a silent skip.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pktpath.sandbox import KernelRun, run_trace, sandbox_available

RunTrace = Callable[..., KernelRun]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def kernel_sandbox() -> RunTrace:
    """``run_trace`` when the sandbox works here; skip (fail in CI) when it does not."""
    ok, why = sandbox_available()
    if not ok:
        if in_ci():
            pytest.fail(f"kernel sandbox unavailable in CI: {why}")
        pytest.skip(f"kernel sandbox unavailable: {why}")
    return run_trace


# ------------------------------------------------------------ synthetic snapshots
def _link(index: int, name: str, mac: str, flags: list[str]) -> dict[str, Any]:
    return {"ifindex": index, "ifname": name, "flags": flags, "mtu": 65536 if name == "lo" else 1500,
            "operstate": "UNKNOWN" if name == "lo" else "UP", "address": mac}


def write_snapshot(root: Path, iptables: str, *, routes: list[dict[str, Any]] | None = None,
                   rules: list[dict[str, Any]] | None = None, sysctl: str = "net.ipv4.ip_forward = 1\n",
                   extra_addrs: dict[str, list[str]] | None = None) -> Path:
    """A small host: lo, eth0 10.0.0.1/24 (02:00:00:00:00:01), eth1 10.1.0.1/24, default via 10.1.0.254."""
    up = ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
    ifaces = [("lo", "00:00:00:00:00:00", ["LOOPBACK", "UP", "LOWER_UP"], ["127.0.0.1/8"]),
              ("eth0", "02:00:00:00:00:01", up, ["10.0.0.1/24"]),
              ("eth1", "02:00:00:00:01:01", up, ["10.1.0.1/24"])]
    addr_json = []
    for index, (name, mac, flags, addrs) in enumerate(ifaces, start=1):
        entry = _link(index, name, mac, flags)
        entry["addr_info"] = [
            {"family": "inet", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1]),
             "scope": "host" if a.startswith("127.") else "global", "label": name}
            for a in addrs + (extra_addrs or {}).get(name, [])]
        addr_json.append(entry)
    root.mkdir(parents=True, exist_ok=True)
    (root / "ip-addr.json").write_text(json.dumps(addr_json))
    (root / "ip-link.json").write_text(json.dumps([{k: v for k, v in a.items() if k != "addr_info"}
                                                   for a in addr_json]))
    if routes is not None:
        (root / "ip-route.json").write_text(json.dumps(routes))
    if rules is not None:
        (root / "ip-rule.json").write_text(json.dumps(rules))
    (root / "sysctl.txt").write_text(sysctl)
    (root / "iptables-save.txt").write_text(iptables)
    return root


def pack(root: Path, dest: Path) -> Path:
    """The snapshot directory as a .tar.gz (the other form snapshot.md allows)."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return dest


@pytest.fixture
def make_snapshot() -> Callable[..., Path]:
    """write_snapshot(root, iptables, ...) for tests that build their own host."""
    return write_snapshot


@pytest.fixture
def pack_snapshot() -> Callable[[Path, Path], Path]:
    return pack
