"""Network namespaces this process creates, enters and deletes -- and no others.

Every namespace gets a name ``ppk-<pid>-<n>[-suffix]`` and an ownership record under
``/run/pktpath-sandbox/ns/`` holding our pid, so cleanup (here, at exit, or by
``tools/sandbox_gc.py`` after a crash) can prove a namespace is ours before deleting it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from pktpath.sandbox.errors import SandboxError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
STATE_DIR = Path("/run/pktpath-sandbox")
OWNER_DIR = STATE_DIR / "ns"
PREFIX = "ppk"

_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()
_live: dict[str, NetNS] = {}
_live_lock = threading.Lock()
_sigterm_users = 0


def new_base_name() -> str:
    """A name no other sandbox (in this or another process, or a dead one) uses."""
    while True:
        name = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
        if not (NETNS_DIR / name).exists() and not (OWNER_DIR / name).exists():
            return name


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run a command, raising SandboxError (with its stderr) when it fails and check is set."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise SandboxError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


class NetNS:
    """One named network namespace that this process created."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = NETNS_DIR / name

    @classmethod
    def create(cls, name: str) -> NetNS:
        """Create the namespace, reserving its name with an O_EXCL ownership record first.

        The name did not exist and the record reserves it, so whatever exists under that
        name afterwards is ours -- also when creation is interrupted half-way.
        """
        if not name.startswith(PREFIX + "-"):
            raise SandboxError(f"refusing to create namespace {name!r} outside our prefix")
        ns = cls(name)
        if ns.path.exists():
            raise SandboxError(f"namespace {name} already exists; not ours, left alone")
        OWNER_DIR.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(OWNER_DIR / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise SandboxError(f"namespace name {name} is reserved by another sandbox") from None
        with os.fdopen(fd, "w") as record:
            record.write(f"{os.getpid()}\n")
        with _live_lock:
            _live[name] = ns
        try:
            run(["ip", "netns", "add", name])
        except BaseException:
            ns.delete()
            raise
        return ns

    def delete(self) -> None:
        """Delete the namespace (idempotent); only ever called on namespaces we created
        (this process, or a dead one whose ownership record names it: tools/sandbox_gc.py)."""
        with _live_lock:
            _live.pop(self.name, None)
        if self.path.exists():
            run(["ip", "netns", "del", self.name], check=False)
        with contextlib.suppress(FileNotFoundError):
            (OWNER_DIR / self.name).unlink()

    def ip(self, *args: str, input: str | None = None, check: bool = True,
           timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        return run(["ip", "-n", self.name, *args], input=input, check=check, timeout=timeout)

    def exec(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
             timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (nsenter: network namespace only)."""
        return run(["nsenter", f"--net={self.path}", "--", *argv], input=input, check=check,
                   timeout=timeout)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Switch the calling thread into the namespace; sockets opened here stay in it.

        setns(CLONE_NEWNET) changes only the calling thread, so other threads of the
        process (and the rest of pytest) are unaffected; the old namespace is restored
        on every exit path.
        """
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
                try:
                    yield
                finally:
                    _setns(own)
            finally:
                os.close(target)
        finally:
            os.close(own)


@atexit.register
def _cleanup_at_exit() -> None:
    """Last resort for namespaces a caller forgot to close (normal exit, uncaught exception)."""
    with _live_lock:
        leftovers = list(_live.values())
    for ns in leftovers:
        ns.delete()


def _sigterm_to_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def trap_sigterm(on: bool) -> bool:
    """While sandboxes are open, SIGTERM (CI cancel, timeouts) unwinds through cleanup.

    Only when nobody else handles SIGTERM and only from the main thread (where Python
    runs signal handlers); reference counted.  Returns whether this call counted.
    """
    global _sigterm_users
    if threading.current_thread() is not threading.main_thread():
        return False
    with _live_lock:
        if on:
            if _sigterm_users == 0 and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return False
            _sigterm_users += 1
            if _sigterm_users == 1:
                signal.signal(signal.SIGTERM, _sigterm_to_exit)
        elif _sigterm_users > 0:
            _sigterm_users -= 1
            if _sigterm_users == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return True
