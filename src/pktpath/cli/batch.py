"""``pktpath trace SNAPSHOT --batch FILE``: many packets through one loaded snapshot.

Each input line is a packet: a JSON object with the keys of the trace contract's
``packet`` (``iif`` or ``"local": true``, ``src``, ``dst``, ``proto``, ``sport``, ``dport``,
``tcp_flags``, ``icmp_type``, ``mark``, ``ttl``, ``length``, ``mac_src``, ``uid``), or the
same options as on the command line.  Each output line is that packet's trace JSON (or an
``error`` object naming the input line), in input order.  The snapshot is loaded once; the
packets are spread over the CPUs by forked workers that share the loaded engine."""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
from collections.abc import Iterable, Iterator
from typing import Any

from pktpath.cli.packet_args import build_packet
from pktpath.engine.path import Engine
from pktpath.errors import PktpathError
from pktpath.model.snapshot import HostSnapshot
from pktpath.trace.render_json import trace_json

OPTION_KEYS = {"--iif": "iif", "--src": "src", "--dst": "dst", "--proto": "proto", "--sport": "sport",
               "--dport": "dport", "--icmp-type": "icmp_type", "--icmp-id": "icmp_id", "--tcp-flags": "tcp_flags",
               "--mark": "mark", "--ttl": "ttl", "--length": "length", "--mac-src": "mac_src", "--uid": "uid"}
JSON_KEYS = frozenset(OPTION_KEYS.values()) | {"local"}

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
        unknown = set(obj) - JSON_KEYS - {"oif"}
        if unknown:
            raise PktpathError(f"unknown key(s) {sorted(unknown)}; expected some of {sorted(JSON_KEYS)}")
        kw = {k: obj.get(k) for k in OPTION_KEYS.values()}
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
    for key in ("sport", "dport", "mark", "ttl", "length", "uid", "icmp_id"):
        if isinstance(kw.get(key), int):
            kw[key] = str(kw[key])
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
        return json.dumps(trace_json(pkt, engine.explore(pkt)), separators=(",", ":"))
    except PktpathError as e:
        return json.dumps({"error": f"{source}:{lineno}: {e}", "line": lineno})


def run_batch(snap: HostSnapshot, engine: Engine, lines: Iterable[str], source: str,
              jobs: int | None = None) -> Iterator[str]:
    """Trace every non-empty line; results in input order."""
    _STATE.update(snap=snap, engine=engine, source=source)
    items = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    workers = jobs or min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(items) < 64 or "fork" not in multiprocessing.get_all_start_methods():
        for item in items:
            yield _trace_one(item)
        return
    ctx = multiprocessing.get_context("fork")  # workers share the loaded engine copy-on-write
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_trace_one, items, chunksize=32)
