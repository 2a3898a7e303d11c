"""Sandbox: one snapshot rebuilt in namespaces; send packets, collect what the kernel did."""

from __future__ import annotations

import random
import select
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pktpath.sandbox import hostlog
from pktpath.sandbox.builder import PEER_IFNAME, Host, build
from pktpath.sandbox.disposition import Evidence, decide
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.inject import ingress_mark, predict_src, send_local, send_wire
from pktpath.sandbox.kmsg import KmsgReader, TraceLine, packet_fields, parse_trace_line, trace_entry
from pktpath.sandbox.netns import NetNS, new_base_name, trap_sigterm
from pktpath.sandbox.observe import Observer, delta, snmp
from pktpath.sandbox.packet import IPv4Header
from pktpath.sandbox.ruleset import rule_text, unhide, verdict
from pktpath.sandbox.snapshot import load, opened
from pktpath.sandbox.spec import PacketSpec, parse_args

QUIET = 0.25  # no news for this long after MIN_WAIT: the kernel is done with the packet
MIN_WAIT = 0.3
SETTLE = 0.05  # after decisive evidence, time for the last log records to land


@dataclass(frozen=True)
class KernelRun:
    """What the real kernel did with one packet.

    ``trace`` entries and ``result`` have the shape of a kernel case's expected.json;
    ``raw_log`` holds the kernel log lines of our packet; ``errno`` is the error of a
    local send; ``evidence`` is what the decision was based on (for people).
    """

    trace: list[dict[str, Any]]
    result: dict[str, Any]
    raw_log: list[str]
    errno: str | None
    evidence: dict[str, Any] = field(default_factory=dict)


def _is_ours(h: IPv4Header, spec: PacketSpec, ident: int) -> bool:
    """Our packet on a socket: its marker ID and protocol (fragments keep both)."""
    return h.id == ident and h.proto == spec.proto


class Sandbox:
    """A snapshot's host rebuilt in network namespaces; a context manager.

    ``peer_macs`` fixes the MAC of the far end of some interfaces (``--mac-src``).
    Packets sent with ``send()`` share conntrack state, like packets on a real host.
    """

    def __init__(self, snapshot: Path, *, peer_macs: Mapping[str, str] | None = None) -> None:
        self.snapshot = Path(snapshot)
        self.peer_macs = dict(peer_macs or {})
        self._namespaces: list[NetNS] = []
        self._token: str | None = None
        self._host: Host | None = None
        self._rng = random.Random()
        self._trapped = False

    def __enter__(self) -> Sandbox:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def host(self) -> Host:
        if self._host is None:
            raise SandboxError("sandbox is not open")
        return self._host

    def _create_ns(self, name: str) -> NetNS:
        ns = NetNS.create(name)
        self._namespaces.append(ns)
        return ns

    def open(self) -> None:
        """Build the namespaces; on any failure (or Ctrl-C) everything is torn down again."""
        self._trapped = trap_sigterm(True)
        try:
            self._token = hostlog.acquire()
            with opened(self.snapshot) as root:
                snap = load(root)
            host_ns = self._create_ns(new_base_name())
            self._host = build(snap, host_ns, self.peer_macs, self._create_ns)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Delete every namespace we created and drop our nf_log_all_netns reference."""
        self._host = None
        while self._namespaces:
            self._namespaces.pop().delete()
        if self._token is not None:
            token, self._token = self._token, None
            hostlog.release(token)
        if self._trapped:
            self._trapped = False
            trap_sigterm(False)

    def send(self, args: list[str], *, timeout: float = 10.0) -> KernelRun:
        """Send one packet described by ``pktpath trace`` arguments; report what happened.

        ``timeout`` bounds the wait for the kernel to finish with the packet.
        """
        spec = parse_args(args)
        host = self.host
        if spec.iif is not None and spec.iif not in host.ifaces:
            raise SandboxError(f"--iif {spec.iif}: no such interface in the snapshot")
        ident = self._rng.randrange(1, 65536)
        src = spec.src if spec.src or not spec.local else predict_src(host.ns, spec)
        peers = {name: (i.peer, PEER_IFNAME) for name, i in host.ifaces.items()}
        observer = Observer(host.ns, peers, {spec.proto} - {255})
        err: str | None = None
        try:
            with ingress_mark(host.ns, spec) as hidden, hostlog.send_window():
                hostlog.ensure()
                kmsg = KmsgReader()
                try:
                    before = snmp(host.ns)
                    if spec.iif is None:
                        err = send_local(host.ns, spec, src, ident)
                    else:
                        send_wire(host.ifaces[spec.iif], spec, ident)
                    messages = self._collect(kmsg, observer, spec, ident, err is not None, timeout)
                    counters = delta(before, snmp(host.ns))
                finally:
                    kmsg.close()
        finally:
            observer.close()
        return self._report(spec, ident, src, err, messages, observer, counters, hidden)

    def _collect(self, kmsg: KmsgReader, observer: Observer, spec: PacketSpec, ident: int,
                 failed: bool, timeout: float) -> list[str]:
        """Gather kernel log records and packets until the kernel is done with ours."""
        t0 = time.monotonic()
        last_news = t0
        messages: list[str] = []
        while True:
            now = time.monotonic()
            decisive = failed or any(_is_ours(s.header, spec, ident)
                                     for s in observer.left + observer.delivered)
            if decisive and now - last_news > SETTLE:
                break
            if (now - last_news > QUIET and now - t0 > MIN_WAIT) or now - t0 > timeout:
                break
            select.select([kmsg.fd, *observer.fds()], [], [], 0.02)
            new_msgs = kmsg.read_new()
            if observer.drain() or new_msgs:
                last_news = time.monotonic()
            messages += new_msgs
        return messages

    def _report(self, spec: PacketSpec, ident: int, src: str | None, err: str | None,
                messages: list[str], observer: Observer, counters: dict[str, int],
                hidden: dict[str, tuple[int, ...]]) -> KernelRun:
        host = self.host
        ours: list[TraceLine] = []
        raw_log: list[str] = []
        for msg in messages:
            # NAT changes neither the IP ID nor the total length: they identify our packet.
            fields = packet_fields(msg)
            if fields.get("ID") != str(ident) or fields.get("LEN") != str(spec.length):
                continue
            raw_log.append(msg)  # TRACE lines, and e.g. a LOG target's line
            line = parse_trace_line(msg)
            if line is not None:
                ours.append(line)
        trace: list[dict[str, Any]] = []
        last_target: str | None = None
        for line in ours:
            num = unhide(hidden, line.table, line.chain, line.num)  # -> numbering of host.tables
            if num is None:
                continue
            sid = host.insertion.to_snapshot_id(line.table, line.chain, line.kind, num)
            if sid is None:
                continue
            entry = trace_entry(line, rule_text(host.tables, line.table, line.chain, num))
            entry["id"] = sid
            trace.append(entry)
            last_target = verdict(host.tables, line.table, line.chain, line.kind, num)
        left = [s for s in observer.left if _is_ours(s.header, spec, ident)]
        delivered = [s for s in observer.delivered if _is_ours(s.header, spec, ident)]
        result = decide(Evidence(spec, trace, last_target, left, delivered, err, counters))
        evidence = {
            "ip_id": ident,
            "src_used": src,
            "last_trace": trace[-1]["id"] if trace else None,
            "last_verdict": last_target,
            "errno": err,
            "snmp_delta": counters,
            "captures": [{**s.header.summary(), "iface": s.iface, "ours": s in left} for s in observer.left],
            "delivered": [{**s.header.summary(), "mark": s.mark, "ours": s in delivered}
                          for s in observer.delivered],
            "warnings": list(host.warnings),
            "notes": list(host.notes),
        }
        return KernelRun(trace, result, raw_log, err, evidence)


def run_trace(snapshot_dir: Path, args: list[str], *, timeout: float = 10) -> KernelRun:
    """Rebuild the snapshot, send one packet (``pktpath trace`` arguments), tear down."""
    spec = parse_args(args)
    peer_macs = {spec.iif: spec.mac_src} if spec.iif and spec.mac_src else {}
    with Sandbox(Path(snapshot_dir), peer_macs=peer_macs) as sandbox:
        return sandbox.send(args, timeout=timeout)
