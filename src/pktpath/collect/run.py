"""Run the collection: every standard command that exists, each output written unmodified.

Strictly read-only: the commands only list state (``*-save``, ``ip ... show``, ``sysctl``
reads, ``conntrack -L``).  Legacy ``*tables-save`` is only run when legacy tables already
exist, because on a host without them it would load the ``ip_tables`` module.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pktpath.collect.sources import (
    BACKENDS_FILE,
    MANIFEST_FILE,
    SOURCES,
    UNAME,
    XTABLES,
    XtablesDump,
    has_tables,
    shell_script,
    version_backend,
)
from pktpath.errors import PktpathError

NETNS_DIR = Path("/run/netns")
TIMEOUT = 60.0
REFUSED = re.compile(r"permission denied|operation not permitted|must be root|are you root|EPERM|EACCES",
                     re.IGNORECASE)


class CollectError(PktpathError):
    """The snapshot could not be written at all (no such namespace, OUT not writable...)."""


@dataclass(frozen=True)
class FileStatus:
    """What happened to one snapshot file: ok, missing (tool absent), refused, failed, skipped."""

    file: str
    command: str
    status: str
    why: str = ""
    backend: str | None = None
    bytes: int = 0


@dataclass
class CollectReport:
    out: Path
    netns: str | None
    kernel: str
    files: list[FileStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    script: str = ""

    @property
    def written(self) -> list[FileStatus]:
        return [f for f in self.files if f.status == "ok"]

    @property
    def usable(self) -> bool:
        """Does the snapshot hold a firewall dump pktpath can load?"""
        return any(f.file in ("iptables-save.txt", "nft-ruleset.json") for f in self.written)

    def to_json(self) -> dict[str, object]:
        return {"out": str(self.out), "netns": self.netns, "kernel": self.kernel,
                "files": [asdict(f) for f in self.files], "warnings": self.warnings}


@dataclass(frozen=True)
class _Run:
    rc: int | None  # None: could not be started (or timed out)
    stdout: bytes
    stderr: str


class Runner:
    """Runs commands on the host, or inside a named network namespace (``ip netns exec``)."""

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self.env = {**os.environ, "LC_ALL": "C"}

    def which(self, tool: str) -> bool:
        return shutil.which(tool) is not None

    def run(self, argv: Sequence[str], *, in_netns: bool = True) -> _Run:
        full = ["ip", "netns", "exec", self.netns, *argv] if self.netns and in_netns else list(argv)
        try:
            p = subprocess.run(full, capture_output=True, timeout=TIMEOUT, env=self.env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return _Run(None, b"", f"timed out after {TIMEOUT:.0f}s")
        except OSError as exc:
            return _Run(None, b"", str(exc))
        return _Run(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace").strip())

    def read_proc(self, path: str) -> str | None:
        """A /proc/net file as the namespace sees it; None when it does not exist or cannot be read."""
        r = self.run(["cat", path])
        return r.stdout.decode("utf-8", "replace") if r.rc == 0 else None


def _failure(file: str, command: str, r: _Run) -> FileStatus:
    why = r.stderr.splitlines()[-1] if r.stderr else f"exit status {r.rc}"
    status = "refused" if REFUSED.search(r.stderr) else "failed"
    return FileStatus(file, command, status, why)


class _Collector:
    def __init__(self, runner: Runner, out: Path) -> None:
        self.runner = runner
        self.out = out
        self.files: list[FileStatus] = []
        self.warnings: list[str] = []
        self.backends: list[str] = []

    def write(self, file: str, command: str, data: bytes, backend: str | None = None, why: str = "") -> None:
        (self.out / file).write_bytes(data)
        self.files.append(FileStatus(file, command, "ok", why, backend, len(data)))

    def plain(self, file: str, argv: Sequence[str], *, in_netns: bool = True) -> bytes | None:
        command = " ".join(argv)
        if not self.runner.which(argv[0]):
            self.files.append(FileStatus(file, command, "missing", f"{argv[0]} is not installed"))
            return None
        r = self.runner.run(argv, in_netns=in_netns)
        if r.rc != 0:
            self.files.append(_failure(file, command, r))
            return None
        self.write(file, command, r.stdout)
        return r.stdout

    def version(self, tool: str) -> str:
        r = self.runner.run([tool, "--version"])
        text = (r.stdout.decode("utf-8", "replace") + "\n" + r.stderr).strip()
        return text.splitlines()[0] if text else tool

    def save(self, dump: XtablesDump, file: str, tool: str, *, note: str = "") -> str | None:
        """Run one *tables-save, record its backend; returns the dump text when written."""
        r = self.runner.run([tool])
        if r.rc != 0:
            self.files.append(_failure(file, tool, r))
            return None
        version = self.version(tool)
        backend = version_backend(version)
        self.write(file, tool, r.stdout, backend, note)
        self.backends.append(f"{file} {version}")
        return r.stdout.decode("utf-8", "replace")

    def xtables(self, dump: XtablesDump) -> None:
        legacy_tables = None
        if dump.legacy_names is not None and dump.legacy is not None and self.runner.which(dump.legacy):
            legacy_tables = self.runner.read_proc(dump.legacy_names)
        if legacy_tables and legacy_tables.strip() and dump.legacy is not None:
            self.save(dump, dump.file, dump.legacy, note="legacy tables present: " + " ".join(legacy_tables.split()))
            if dump.nft is not None and self.runner.which(dump.nft):
                r = self.runner.run([dump.nft])
                if r.rc == 0 and has_tables(r.stdout.decode("utf-8", "replace")):
                    self.save(dump, dump.nft_file, dump.nft, note="the nf_tables backend holds rules too")
                    self.warnings.append(
                        f"{dump.what}: rules under both backends (legacy in {dump.file}, nf_tables in "
                        f"{dump.nft_file}); the kernel runs both, pktpath reads only {dump.file}")
            return
        tool = next((t for t in (dump.default, dump.nft) if t and self.runner.which(t)), None)
        if tool is None:
            self.files.append(FileStatus(dump.file, dump.default, "missing", f"{dump.default} is not installed"))
            return
        if dump.legacy_names is None and version_backend(self.version(tool)) == "legacy" \
                and not Path("/sys/module/ebtables").exists():
            # Legacy ebtables-save would load the ebtables module to list nothing.
            self.files.append(FileStatus(dump.file, tool, "skipped",
                                         "legacy ebtables backend and the ebtables module is not loaded: no rules"))
            return
        self.save(dump, dump.file, tool, note="no legacy tables" if dump.legacy_names else "")


def kernel_release(uname_a: str) -> str:
    words = uname_a.split()
    return words[2] if len(words) > 2 else uname_a.strip()


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CollectError(f"{out}: exists and is not an empty directory (choose a new OUT)")


def tar_path(out: Path) -> Path:
    return out if out.name.endswith((".tar.gz", ".tgz")) else out.with_name(out.name + ".tar.gz")


def collect(out: Path, *, netns: str | None = None, tar: bool = False) -> CollectReport:
    """Write a snapshot of the host (or of network namespace ``netns``) into ``out``.

    With ``tar``, ``out`` becomes one ``.tar.gz`` (suffix added when missing) holding a
    directory of the same base name.  Raises ``CollectError`` only when nothing sensible can
    be written; absent or refusing tools are reported in the returned ``CollectReport``.
    """
    out = Path(out)
    if netns is not None and not (NETNS_DIR / netns).exists():
        raise CollectError(f"no network namespace named {netns!r} (ip netns list)")
    if tar:
        dest = tar_path(out)
        if dest.exists():
            raise CollectError(f"{dest}: exists (choose a new OUT)")
        base = dest.name.removesuffix(".tar.gz").removesuffix(".tgz")
        with tempfile.TemporaryDirectory(prefix="pktpath-collect-") as tmp:
            report = collect(Path(tmp) / base, netns=netns)
            with tarfile.open(dest, "w:gz") as archive:
                archive.add(report.out, arcname=base)
        report.out = dest
        report.script = shell_script(base, netns)
        return report
    _check_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CollectError(f"{out}: cannot create ({exc.strerror})") from None
    runner = Runner(netns)
    c = _Collector(runner, out)
    uname = c.plain(UNAME.file, UNAME.argv, in_netns=False)
    kernel = kernel_release(uname.decode()) if uname else os.uname().release
    for dump in XTABLES:
        c.xtables(dump)
    for src in SOURCES:
        c.plain(src.file, src.argv)
    (out / BACKENDS_FILE).write_text("".join(line + "\n" for line in c.backends))
    report = CollectReport(out, netns, kernel, c.files, c.warnings, shell_script(str(out), netns))
    if not report.usable:
        report.warnings.append("neither iptables-save.txt nor nft-ruleset.json could be written: pktpath "
                               "cannot load this snapshot")
    manifest = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                **report.to_json(), "backends": c.backends}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return report


def render_report(report: CollectReport) -> str:
    """The human summary: per file what ran and what happened, then the plain commands."""
    where = f"network namespace {report.netns}" if report.netns else "this host"
    lines = [f"snapshot of {where} (kernel {report.kernel}) written to {report.out}"]
    width = max((len(f.file) for f in report.files), default=10)
    for f in report.files:
        detail = f.status
        if f.backend:
            detail += f", {f.backend} backend"
        if f.why:
            detail += f": {f.why}"
        command = f.command if len(f.command) <= 30 else f.command[:29] + "…"
        lines.append(f"  {f.file:<{width}}  {command:<30}  {detail}")
    lines += [f"warning: {w}" for w in report.warnings]
    lines += ["", "Without pktpath on the host, these plain shell commands write the same files:", "",
              report.script.rstrip("\n")]
    return "\n".join(lines) + "\n"
