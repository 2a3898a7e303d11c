"""The on-disk cache of validated chains' facts, so that loading an unchanged (or slightly
edited) large dump does not validate its 300,000 rules again.

Keyed by a digest of each chain's table and lines, and stamped with pktpath's own code:
any change to the parser or an extension empties it.  One file per dump path holds the
facts of that dump's tables and chains as last loaded.  ``PKTPATH_CACHE=off`` turns it off;
``PKTPATH_CACHE_DIR`` moves it (default ``$XDG_CACHE_HOME/pktpath`` or ``~/.cache/pktpath``).
A cache that cannot be read or written is ignored: it only ever saves time."""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from pktpath.model.xtables import ChainFacts, TableFacts

FORMAT = 1
KEEP = 32  # dumps whose facts are kept (a 30k-service dump's are ~9 MB)
_stamp: str | None = None


def cache_dir() -> Path | None:
    if os.environ.get("PKTPATH_CACHE", "").lower() in ("0", "off", "no", "false"):
        return None
    if os.environ.get("PKTPATH_CACHE_DIR"):
        return Path(os.environ["PKTPATH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pktpath"


def code_stamp() -> str:
    """pktpath's parser and extensions as they are now (file names, sizes, mtimes)."""
    global _stamp
    if _stamp is None:
        root = Path(__file__).resolve().parent.parent
        h = hashlib.blake2b(f"{FORMAT} {sys.version}".encode(), digest_size=16)
        for sub in ("parse", "ext", "model", "engine/skb.py"):
            paths = sorted((root / sub).rglob("*.py")) if (root / sub).is_dir() else [root / sub]
            for p in paths:
                st = p.stat()
                h.update(f"{p.relative_to(root)} {st.st_size} {st.st_mtime_ns}\n".encode())
        _stamp = h.hexdigest()
    return _stamp


class FactsCache:
    """The facts of one dump's tables (read at once: a few KB) and chains (read only when a
    table changed, to validate just its changed chains); ``save()`` writes what changed."""

    def __init__(self, base: Path | None) -> None:
        self.base = base
        self.tables: dict[bytes, TableFacts] = {}
        self._chains: dict[bytes, ChainFacts] | None = None
        self.used_tables: set[bytes] = set()
        self.used_chains: set[bytes] = set()
        self.changed = False
        if base is not None:
            for key, value in _read(base.with_suffix(".tables")).items():
                self.tables[key] = TableFacts(value[0], value[1], dict(value[2]))
            if self.tables:
                with contextlib.suppress(OSError):
                    os.utime(base.with_suffix(".tables"))  # used: the last to be pruned

    @classmethod
    def for_source(cls, source: str) -> FactsCache:
        where = cache_dir()
        if where is None:
            return cls(None)
        return cls(where / f"facts-{hashlib.blake2b(os.path.abspath(source).encode(), digest_size=12).hexdigest()}")

    def table(self, digest: bytes) -> TableFacts | None:
        self.used_tables.add(digest)
        return self.tables.get(digest)

    def put_table(self, digest: bytes, facts: TableFacts) -> None:
        self.used_tables.add(digest)
        self.tables[digest] = facts
        self.changed = True

    def chain(self, digest: bytes) -> ChainFacts | None:
        self.used_chains.add(digest)
        return self.chains.get(digest)

    def put_chain(self, digest: bytes, facts: ChainFacts) -> None:
        self.used_chains.add(digest)
        self.chains[digest] = facts
        self.changed = True

    @property
    def chains(self) -> dict[bytes, ChainFacts]:
        if self._chains is None:
            self._chains = {}
            if self.base is not None:
                for key, value in _read(self.base.with_suffix(".chains")).items():
                    self._chains[key] = ChainFacts(*value)
        return self._chains

    def save(self) -> None:
        """Keep what this load used (an edited dump's old chains go)."""
        if self.base is None or not self.changed:
            return
        _write(self.base.with_suffix(".tables"),
               {k: (v.needs_conntrack, v.sets, tuple(v.layout.items()))
                for k, v in self.tables.items() if k in self.used_tables})
        if self.used_chains:
            _write(self.base.with_suffix(".chains"),
                   {k: _as_tuple(v) for k, v in self.chains.items() if k in self.used_chains})
        _prune(self.base.parent)


def _prune(where: Path) -> None:
    """Keep the facts of the KEEP most recently used dumps."""
    try:
        tables = sorted(where.glob("facts-*.tables"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in tables[KEEP:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".chains").unlink(missing_ok=True)
    except OSError:
        pass


def _read(path: Path) -> dict[bytes, Any]:
    try:
        with open(path, "rb") as fh:
            stamp, entries = marshal.load(fh)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return entries if stamp == code_stamp() and isinstance(entries, dict) else {}


def _write(path: Path, entries: dict[bytes, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            marshal.dump((code_stamp(), entries), fh)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _as_tuple(f: ChainFacts) -> tuple[object, ...]:
    return (f.edges, f.hooks, f.uses_in, f.uses_out, f.conntrack, f.sets, f.bad_table_target, f.counts, f.keys)
