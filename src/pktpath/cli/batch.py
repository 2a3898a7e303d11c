"""``pktpath trace SNAPSHOT --batch FILE``: many packets through one loaded snapshot.

Each input line is a packet: a JSON object with the keys of the trace contract's
``packet`` (``iif`` or ``"local": true``, ``src``, ``dst``, ``proto``, ``sport``, ``dport``,
``tcp_flags``, ``icmp_type``, ``mark``, ``ttl``, ``length``, ``mac_src``, ``uid``), or the
same options as on the command line.  Each output line is that packet's trace JSON (or an
``error`` object naming the input line), in input order.  The snapshot is loaded once; the
packets are spread over the CPUs by forked workers that share the loaded engine."""

from __future__ import annotations

import gc
import json
import mmap
import multiprocessing
import os
import pickle
import shlex
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from pktpath.cli.packet_args import build_packet
from pktpath.engine.path import Engine
from pktpath.errors import PktpathError
from pktpath.model.snapshot import HostSnapshot
from pktpath.trace.render_json import trace_json_text

OPTION_KEYS = {"--iif": "iif", "--src": "src", "--dst": "dst", "--proto": "proto", "--sport": "sport",
               "--dport": "dport", "--icmp-type": "icmp_type", "--icmp-id": "icmp_id", "--tcp-flags": "tcp_flags",
               "--mark": "mark", "--ttl": "ttl", "--length": "length", "--mac-src": "mac_src", "--uid": "uid"}
JSON_KEYS = frozenset(OPTION_KEYS.values()) | {"local"}
_OPTION_NAMES = tuple(OPTION_KEYS.values())
_KNOWN_KEYS = JSON_KEYS | {"oif"}
_NUMBER_KEYS = ("sport", "dport", "mark", "ttl", "length", "uid", "icmp_id")

_STATE: dict[str, Any] = {}  # the loaded snapshot and engine, inherited by forked workers


def parse_line(line: str) -> dict[str, Any]:
    """One batch line -> build_packet() keyword arguments."""
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise PktpathError(f"not valid JSON ({e.msg}), expected a packet object or trace options") from None
        if not isinstance(obj, dict):
            raise PktpathError("expected a JSON object with the keys of the trace contract's packet")
        unknown = obj.keys() - _KNOWN_KEYS
        if unknown:
            raise PktpathError(f"unknown key(s) {sorted(unknown)}; expected some of {sorted(JSON_KEYS)}")
        kw = {k: obj.get(k) for k in _OPTION_NAMES}
        kw["local"] = bool(obj.get("local")) or obj.get("iif") is None
        flags = kw.get("tcp_flags")
        if isinstance(flags, list):
            kw["tcp_flags"] = ",".join(str(f) for f in flags)
        if isinstance(kw.get("icmp_type"), int):
            code = obj.get("icmp_code")
            kw["icmp_type"] = f"{kw['icmp_type']}/{code}" if code is not None else str(kw["icmp_type"])
    else:
        words = shlex.split(text)
        kw = {k: None for k in OPTION_KEYS.values()}
        kw["local"] = False
        i = 0
        while i < len(words):
            w = words[i]
            if w == "--local":
                kw["local"] = True
                i += 1
            elif w in OPTION_KEYS and i + 1 < len(words):
                kw[OPTION_KEYS[w]] = words[i + 1]
                i += 2
            else:
                raise PktpathError(f"unexpected {w!r}; expected trace options such as --iif IF --src IP --dst IP")
    for key in _NUMBER_KEYS:
        value = kw.get(key)
        if isinstance(value, int):
            kw[key] = str(value)
    kw["proto"] = str(kw.get("proto") or "tcp")
    if kw.get("dst") is None:
        raise PktpathError("no destination (dst / --dst)")
    return kw


def _trace_one(item: tuple[int, str]) -> str:
    lineno, line = item
    snap: HostSnapshot = _STATE["snap"]
    engine: Engine = _STATE["engine"]
    source: str = _STATE["source"]
    try:
        pkt = build_packet(snap.net, **parse_line(line))
        return trace_json_text(pkt, engine.explore(pkt), snap.notes)
    except PktpathError as e:
        return json.dumps({"error": f"{source}:{lineno}: {e}", "line": lineno})


def run_batch(snap: HostSnapshot, engine: Engine, lines: Iterable[str], source: str,
              jobs: int | None = None) -> Iterator[str]:
    """Trace every non-empty line; results in input order."""
    for line in run_batch_bytes(snap, engine, lines, source, jobs):
        yield line.decode()


def run_batch_bytes(snap: HostSnapshot, engine: Engine, lines: Iterable[str], source: str,
                    jobs: int | None = None) -> Iterator[bytes]:
    """run_batch() as UTF-8 lines: what the CLI writes, without decoding tens of kilobytes
    per packet only to encode them again."""
    _STATE.update(snap=snap, engine=engine, source=source)
    items = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    workers = jobs or min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(items) < 64 or "fork" not in multiprocessing.get_all_start_methods():
        for item in items:
            yield _trace_one(item).encode()
        return
    # The first packet is traced here, before the workers are forked: what it compiles and
    # caches (chains reached, rules built, the engine's caches) every worker then inherits
    # instead of building its own copy.
    yield _trace_one(items[0]).encode()
    yield from _run_forked(items[1:], workers)


# The forked workers.  A result line is tens of kilobytes (every path's trace with its kernel log
# lines), so results do not travel pickled through a pipe, which costs the reading process more
# than the tracing costs a worker: each worker writes its chunk's lines into its own shared
# memory and sends only their sizes.  Chunks go to the workers round-robin (chunk c to worker
# c % workers), so the reader takes each chunk from a known worker, in input order, with no
# reordering.  A worker may run CREDITS chunks ahead of the reader, one shared-memory slot
# each; the reader hands a slot back (one byte on the worker's credit pipe) once it has copied
# the chunk out.
CHUNK = 16  # packets per chunk
CREDITS = 4  # chunks a worker may have finished and not yet read
SLOT = 8 << 20  # shared-memory bytes per chunk; a chunk's results beyond that go through the pipe
_HEAD = struct.Struct("<BQ")  # where the chunk is (_IN_SLOT, _IN_PIPE, _FAILED), line count / blob size
_IN_SLOT, _IN_PIPE, _FAILED = 0, 1, 2


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, size: int) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise EOFError
        got += n
    view.release()
    return bytes(buf)


def _worker(index: int, workers: int, items: list[tuple[int, str]], credit_fd: int, result_fd: int,
            region: mmap.mmap, close: list[int]) -> None:
    for fd in close:
        os.close(fd)
    try:
        _work(index, workers, items, credit_fd, result_fd, region)
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the reader went away (it stopped reading, or was interrupted): nothing left to do


def _work(index: int, workers: int, items: list[tuple[int, str]], credit_fd: int, result_fd: int,
          region: mmap.mmap) -> None:
    for j, start in enumerate(range(index * CHUNK, len(items), workers * CHUNK)):
        if j >= CREDITS:
            _read_exact(credit_fd, 1)  # the reader is done with slot j % CREDITS
        try:
            data = [_trace_one(item).encode() for item in items[start:start + CHUNK]]
        except Exception as e:  # noqa: BLE001 -- re-raised by the reader, as Pool.imap would
            try:
                blob = pickle.dumps(e)
            except Exception:  # noqa: BLE001
                blob = pickle.dumps(RuntimeError(f"batch worker failed: {e!r}"))
            _write_all(result_fd, _HEAD.pack(_FAILED, len(blob)) + blob)
            return
        sizes = [len(d) for d in data]
        head = struct.pack(f"<{len(sizes)}Q", *sizes)
        if sum(sizes) <= SLOT:
            offset = (j % CREDITS) * SLOT
            for d in data:
                region[offset:offset + len(d)] = d
                offset += len(d)
            _write_all(result_fd, _HEAD.pack(_IN_SLOT, len(sizes)) + head)
        else:
            _write_all(result_fd, _HEAD.pack(_IN_PIPE, len(sizes)) + head + b"".join(data))


def _run_forked(items: list[tuple[int, str]], workers: int) -> Iterator[bytes]:
    ctx = multiprocessing.get_context("fork")  # workers share the loaded engine copy-on-write
    chunks = (len(items) + CHUNK - 1) // CHUNK
    workers = min(workers, chunks)
    procs: list[multiprocessing.process.BaseProcess] = []
    regions: list[mmap.mmap] = []
    credit_fds: list[int] = []
    result_fds: list[int] = []
    # The loaded snapshot is frozen out of the workers' garbage collections: they never scan
    # (and so never copy) its pages.  The parent thaws it again once they are forked (unless
    # its caller had frozen objects itself).
    thaw = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        for index in range(workers):
            region = mmap.mmap(-1, CREDITS * SLOT)  # anonymous and shared with the forked worker
            credit_r, credit_w = os.pipe()
            result_r, result_w = os.pipe()
            close = [credit_w, result_r, *credit_fds, *result_fds]
            regions.append(region)
            credit_fds.append(credit_w)
            result_fds.append(result_r)
            proc = ctx.Process(target=_worker, args=(index, workers, items, credit_r, result_w, region, close),
                               daemon=True)
            try:
                proc.start()
            finally:
                os.close(credit_r)
                os.close(result_w)
            procs.append(proc)
    except BaseException:
        _stop(procs, regions, credit_fds, result_fds)
        raise
    finally:
        if thaw:
            gc.unfreeze()
    try:
        for chunk in range(chunks):
            w = chunk % workers
            fd = result_fds[w]
            try:
                where, count = _HEAD.unpack(_read_exact(fd, _HEAD.size))
                if where == _FAILED:
                    raise pickle.loads(_read_exact(fd, count))
                sizes = struct.unpack(f"<{count}Q", _read_exact(fd, 8 * count))
                if where == _IN_SLOT:
                    region = regions[w]
                    offset = (chunk // workers % CREDITS) * SLOT
                    out = []
                    for size in sizes:
                        out.append(region[offset:offset + size])
                        offset += size
                else:
                    blob = _read_exact(fd, sum(sizes))
                    out = []
                    offset = 0
                    for size in sizes:
                        out.append(blob[offset:offset + size])
                        offset += size
            except EOFError:
                raise RuntimeError(f"batch worker {w} exited before its results were read") from None
            if chunk + workers * CREDITS < chunks:
                os.write(credit_fds[w], b"\0")  # the worker's next chunk may use this slot
            yield from out
    finally:
        _stop(procs, regions, credit_fds, result_fds)


def _stop(procs: list[multiprocessing.process.BaseProcess], regions: list[mmap.mmap], credit_fds: list[int],
          result_fds: list[int]) -> None:
    for fd in credit_fds + result_fds:
        os.close(fd)  # a worker still running stops at its next credit (EOF) or write (EPIPE)
    for proc in procs:
        proc.join(timeout=5)
        if proc.exitcode is None:
            proc.terminate()
            proc.join()
    for region in regions:
        region.close()
