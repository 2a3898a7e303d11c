"""Every real-world ruleset in ../shared/corpus loads in pktpath exactly when the real
``iptables-legacy-restore`` loads it into a namespace, and is refused at the same line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pktpath.errors import ParseError
from pktpath.io.snapshot import _check_sets
from pktpath.parse.iptables_save import infer_table, parse

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
FILES = sorted(p for d in ("iptables", "iptables-S") for p in (CORPUS / d).glob("*/*") if p.is_file()) \
    if CORPUS.exists() else []
LINE_RE = re.compile(r"(?:line:? |line )(\d+)")


def _can_run() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root (network namespaces)"
    if not shutil.which("iptables-legacy-restore"):
        return False, "iptables-legacy-restore is not installed (apt-get install iptables)"
    return True, ""


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    ok, why = _can_run()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"kernel test cannot run in CI: {why}")
        pytest.skip(why)
    name = f"ppc-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def kernel_load(ns: str, text: str) -> int | None:
    """None when iptables-legacy-restore loads the file, else the line it names."""
    p = subprocess.run(["ip", "netns", "exec", ns, "iptables-legacy-restore"], input=text, text=True,
                       capture_output=True, timeout=60)
    if p.returncode == 0:
        return None
    m = LINE_RE.search(p.stderr)
    return int(m.group(1)) if m else 0


def pktpath_load(path: Path, text: str) -> int | None:
    try:
        rs = parse(text, str(path))
        _check_sets(rs, {})  # the corpus has no ipsets: a rule naming one is refused
    except ParseError as e:
        return e.line or 0
    return None


@pytest.mark.kernel
@pytest.mark.skipif(not FILES, reason="../shared/corpus is absent")
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_loads_exactly_when_the_kernel_does(netns: str, path: Path) -> None:
    text = path.read_text(errors="replace")
    if "*" not in text.split("\n-A", 1)[0] and path.parent.parent.name == "iptables-S":
        # -S output names no table: restore it into the table pktpath infers from its chains and targets
        text = f"*{infer_table(text)}\n" + text + "\nCOMMIT\n"
    want = kernel_load(netns, text)
    got = pktpath_load(path, text)
    assert got == want, f"kernel: {'loads' if want is None else f'refuses line {want}'}; " \
                        f"pktpath: {'loads' if got is None else f'refuses line {got}'}"
