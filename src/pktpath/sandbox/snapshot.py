"""Read a snapshot directory (or .tar.gz) into the plain data the builder needs.

The files are the unmodified outputs of ``ip -j ...``, ``sysctl -a``, ``iptables-save``
and ``ipset save`` (spec/snapshot.md).  Missing optional files mean kernel defaults.
"""

from __future__ import annotations

import contextlib
import json
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pktpath.sandbox.errors import SandboxError

JsonObj = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    links: list[JsonObj]  # ip -j -d link (or the link part of ip -j addr), ifindex order
    addrs: dict[str, list[JsonObj]]  # ifname -> inet addr_info entries, kernel order
    routes: list[JsonObj] | None  # None: only what the kernel derives from the addresses
    rules: list[JsonObj] | None  # None: the kernel's three default rules
    sysctl: dict[str, str]
    iptables: str
    ipset: str | None
    conntrack_entries: int  # lines of conntrack.txt (not loaded: the sandbox starts empty)


def _json_list(path: Path) -> list[JsonObj] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise SandboxError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise SandboxError(f"{path}: expected a JSON list of objects")
    return data


def parse_sysctl(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and not line.lstrip().startswith(("#", ";")):
            out[key.strip()] = value.strip()
    return out


def load(root: Path) -> Snapshot:
    """Load a snapshot directory."""
    if not (root / "iptables-save.txt").exists():
        raise SandboxError(f"{root}: no iptables-save.txt (the sandbox loads only iptables-legacy rules)")
    links = _json_list(root / "ip-link.json")
    addr_json = _json_list(root / "ip-addr.json") or []
    if links is None:
        links = [{k: v for k, v in a.items() if k != "addr_info"} for a in addr_json]
    links = sorted(links, key=lambda link: int(link.get("ifindex", 0)))
    addrs = {str(a["ifname"]): [i for i in a.get("addr_info", []) if i.get("family") == "inet"]
             for a in addr_json if "ifname" in a}
    sysctl_path = root / "sysctl.txt"
    ipset_path = root / "ipset-save.txt"
    ct_path = root / "conntrack.txt"
    ct_lines = [line for line in ct_path.read_text().splitlines() if "src=" in line] if ct_path.exists() else []
    return Snapshot(
        links=links,
        addrs=addrs,
        routes=_json_list(root / "ip-route.json"),
        rules=_json_list(root / "ip-rule.json"),
        sysctl=parse_sysctl(sysctl_path.read_text()) if sysctl_path.exists() else {},
        iptables=(root / "iptables-save.txt").read_text(),
        ipset=ipset_path.read_text() if ipset_path.exists() else None,
        conntrack_entries=len(ct_lines),
    )


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Path]:
    """A snapshot directory for ``path``, unpacking a .tar.gz into a temporary one."""
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise SandboxError(f"{path}: no such snapshot")
    with tempfile.TemporaryDirectory(prefix="pktpath-snap-") as tmp:
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        found = sorted(Path(tmp).rglob("iptables-save.txt"))
        yield found[0].parent if found else Path(tmp)
