"""The one setting we touch outside our namespaces: ``net.netfilter.nf_log_all_netns``.

nf_log drops log lines from non-initial namespaces unless this sysctl is 1.  Several
sandboxes (threads, pytest-xdist workers) may run at once, so the value is reference
counted in a small state file under a lock: the first user saves the old value and sets
1, the last one restores it.  Users whose process died are pruned, so a crash never
loses the saved value.  The same directory holds the lock that serialises the short
send-and-listen window, which keeps kernel log lines of concurrent runs apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.netns import STATE_DIR

ALL_NETNS = Path("/proc/sys/net/netfilter/nf_log_all_netns")
STATE_FILE = STATE_DIR / "nf_log_all_netns.json"


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(STATE_DIR / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the description releases the flock


def send_window() -> contextlib.AbstractContextManager[None]:
    """Exclusive lock held while one sandbox sends its packet and reads the kernel log."""
    return _locked("send.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load() -> dict[str, object]:
    try:
        data = json.loads(STATE_FILE.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _users(state: dict[str, object]) -> dict[str, int]:
    users = state.get("users")
    if not isinstance(users, dict):
        return {}
    return {str(k): int(v) for k, v in users.items() if _pid_alive(int(v))}


def acquire() -> str:
    """Make sure nf_log_all_netns is 1; returns a token for release()."""
    token = uuid.uuid4().hex
    with _locked("nf_log.lock"):
        state = _load()
        users = _users(state)
        saved = state.get("saved")
        if not isinstance(saved, str):
            saved = ALL_NETNS.read_text().strip()
        try:
            ALL_NETNS.write_text("1\n")
        except OSError as exc:
            raise SandboxError(f"cannot set {ALL_NETNS}: {exc}") from exc
        users[token] = os.getpid()
        STATE_FILE.write_text(json.dumps({"saved": saved, "users": users}))
    return token


def ensure() -> None:
    """Re-assert 1 before a send: a tool that restored the value under us loses no lines."""
    with _locked("nf_log.lock"):
        if ALL_NETNS.read_text().strip() != "1" and _users(_load()):
            ALL_NETNS.write_text("1\n")


def release(token: str) -> None:
    """Drop our reference; the last live user restores the saved value."""
    with _locked("nf_log.lock"):
        state = _load()
        users = _users(state)
        users.pop(token, None)
        saved = state.get("saved")
        if users:
            STATE_FILE.write_text(json.dumps({"saved": saved, "users": users}))
            return
        if isinstance(saved, str):
            ALL_NETNS.write_text(saved + "\n")
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()


def restore_if_orphaned() -> bool:
    """Restore the saved value when every recorded user is dead (crash recovery)."""
    with _locked("nf_log.lock"):
        state = _load()
        if not state or _users(state):
            return False
        saved = state.get("saved")
        if isinstance(saved, str):
            ALL_NETNS.write_text(saved + "\n")
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()
        return True
