"""Sandbox: one snapshot rebuilt in namespaces; send packets, collect what the kernel did."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import random
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pktpath.sandbox import hostlog
from pktpath.sandbox.builder import PEER_IFNAME, Host, build
from pktpath.sandbox.disposition import Evidence, decide
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.kmsg import KmsgReader, TraceLine, parse_trace_line, trace_entry
from pktpath.sandbox.netns import NetNS, new_base_name
from pktpath.sandbox.observe import Observer, delta, snmp
from pktpath.sandbox.packet import build_frame, build_ip
from pktpath.sandbox.ruleset import rule_text, verdict
from pktpath.sandbox.snapshot import load, opened
from pktpath.sandbox.spec import PacketSpec, parse_args

IP_PKTINFO = 8
IP_PROTOCOL = 52  # cmsg: flow protocol of an IP_HDRINCL send (routing's ipproto selector)
SO_MARK = 36
QUIET = 0.25  # no news for this long after MIN_WAIT: the kernel is done with the packet
MIN_WAIT = 0.3
SETTLE = 0.05  # after decisive evidence, time for the last log records to land

_libc = ctypes.CDLL(None, use_errno=True)


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


@contextlib.contextmanager
def _fsuid(uid: int | None) -> Iterator[None]:
    """Create sockets as uid: a socket's owner (sk_uid, -m owner) is the creator's fsuid."""
    if not uid:
        yield
        return
    _libc.setfsuid(uid)
    try:
        if _libc.setfsuid(-1) != uid:  # -1 is invalid: returns the current fsuid unchanged
            raise SandboxError(f"cannot switch fsuid to {uid}")
        yield
    finally:
        _libc.setfsuid(0)


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

    # ----------------------------------------------------------------- sending
    def _predict_src(self, spec: PacketSpec) -> str | None:
        """The source a local socket gets when it does not bind: ask the kernel's routing."""
        args = ["route", "get", spec.dst, "mark", str(spec.mark), "ipproto", spec.proto_name]
        if spec.uid is not None:
            args += ["uid", str(spec.uid)]
        proc = self.host.ns.ip("-j", *args, check=False)
        if proc.returncode != 0:
            return None
        routes = json.loads(proc.stdout or "[]")
        return str(routes[0]["prefsrc"]) if routes and "prefsrc" in routes[0] else None

    def _local_socket(self, spec: PacketSpec) -> socket.socket:
        """A raw IP_HDRINCL socket in the host namespace, owned by --uid, marked --mark."""
        box: list[socket.socket] = []
        failure: list[BaseException] = []

        def work() -> None:  # own thread: setns and setfsuid then affect nothing else
            try:
                with self.host.ns.entered(), _fsuid(spec.uid):
                    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                s.setsockopt(socket.SOL_SOCKET, SO_MARK, spec.mark)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                box.append(s)
            except BaseException as exc:  # re-raised in the caller
                failure.append(exc)

        t = threading.Thread(target=work, name="pktpath-sandbox-socket")
        t.start()
        t.join()
        if failure:
            raise failure[0]
        return box[0]

    def _send_local(self, spec: PacketSpec, src: str | None, ident: int) -> str | None:
        """Send from a local process; returns the errno name when sendmsg() fails."""
        datagram = build_ip(spec, src or "0.0.0.0", ident)
        cmsgs = [(socket.SOL_IP, IP_PROTOCOL, struct.pack("i", spec.proto))]
        if spec.src:  # the routing lookup sees the source, as for a bound socket
            cmsgs.append((socket.SOL_IP, IP_PKTINFO,
                          struct.pack("i4s4s", 0, socket.inet_aton(spec.src), bytes(4))))
        sock = self._local_socket(spec)
        try:
            sock.sendmsg([datagram], cmsgs, 0, (spec.dst, 0))
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc.errno))
        finally:
            sock.close()
        return None

    def _send_wire(self, spec: PacketSpec, ident: int) -> None:
        """Inject the frame on the far end of --iif (raw L2 socket in the peer namespace)."""
        assert spec.iif is not None
        iface = self.host.ifaces[spec.iif]
        frame = build_frame(spec, iface.mac, spec.mac_src or iface.peer_mac, ident)
        with iface.peer.entered():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
        try:
            s.bind((PEER_IFNAME, 0))
            s.send(frame)
        finally:
            s.close()

    @contextlib.contextmanager
    def _ingress_mark(self, spec: PacketSpec) -> Iterator[None]:
        """An skb mark on an arriving packet: veth scrubs marks, so set it at tc ingress."""
        if spec.local or not spec.mark:
            yield
            return
        assert spec.iif is not None
        ns = self.host.ns
        ns.exec(["tc", "qdisc", "add", "dev", spec.iif, "clsact"])
        try:
            ns.exec(["tc", "filter", "add", "dev", spec.iif, "ingress", "matchall",
                     "action", "skbedit", "mark", str(spec.mark)])
            yield
        finally:
            ns.exec(["tc", "qdisc", "del", "dev", spec.iif, "clsact"], check=False)

    def send(self, args: list[str], *, timeout: float = 10.0) -> KernelRun:
        """Send one packet described by ``pktpath trace`` arguments; report what happened."""
        spec = parse_args(args)
        host = self.host
        if spec.iif is not None and spec.iif not in host.ifaces:
            raise SandboxError(f"--iif {spec.iif}: no such interface in the snapshot")
        ident = self._rng.randrange(1, 65536)
        src = spec.src if spec.src or not spec.local else self._predict_src(spec)
        peers = {name: (i.peer, PEER_IFNAME) for name, i in host.ifaces.items()}
        observer = Observer(host.ns, peers, {spec.proto} - {255})
        err: str | None = None
        try:
            with self._ingress_mark(spec), hostlog.send_window():
                kmsg = KmsgReader()
                try:
                    before = snmp(host.ns)
                    if spec.local:
                        err = self._send_local(spec, src, ident)
                    else:
                        self._send_wire(spec, ident)
                    messages = self._collect(kmsg, observer, spec, ident, err is not None, timeout)
                    counters = delta(before, snmp(host.ns))
                finally:
                    kmsg.close()
        finally:
            observer.close()
        return self._report(spec, ident, src, err, messages, observer, counters)

    def _collect(self, kmsg: KmsgReader, observer: Observer, spec: PacketSpec, ident: int,
                 failed: bool, timeout: float) -> list[str]:
        """Gather kernel log records and packets until the kernel is done with ours."""
        t0 = time.monotonic()
        last_news = t0
        messages: list[str] = []
        while True:
            now = time.monotonic()
            decisive = failed or any(s.header.id == ident and s.header.proto == spec.proto
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
                messages: list[str], observer: Observer, counters: dict[str, int]) -> KernelRun:
        host = self.host
        ours: list[TraceLine] = []
        raw_log: list[str] = []
        for msg in messages:
            line = parse_trace_line(msg)
            if line is None:
                if f" ID={ident} " in msg and f" LEN={spec.length} " in msg:
                    raw_log.append(msg)  # e.g. a LOG target's line for our packet
                continue
            if line.int_field("ID") == ident and line.int_field("LEN") == spec.length:
                ours.append(line)
                raw_log.append(msg)
        trace: list[dict[str, Any]] = []
        last_target: str | None = None
        for line in ours:
            sid = host.insertion.to_snapshot_id(line.table, line.chain, line.kind, line.num)
            if sid is None:
                continue
            entry = trace_entry(line, rule_text(host.tables, line.table, line.chain, line.num))
            entry["id"] = sid
            trace.append(entry)
            last_target = verdict(host.tables, line.table, line.chain, line.kind, line.num)

        def is_ours(h: Any) -> bool:
            return bool(h.id == ident and h.proto == spec.proto)

        left = [s for s in observer.left if is_ours(s.header)]
        delivered = [s for s in observer.delivered if is_ours(s.header)]
        result = decide(Evidence(spec, trace, last_target, left, delivered, err, counters))
        evidence = {
            "ip_id": ident,
            "src_used": src,
            "last_trace": trace[-1]["id"] if trace else None,
            "last_verdict": last_target,
            "errno": err,
            "snmp_delta": counters,
            "captures": [{**s.header.summary(), "iface": s.iface, "ours": is_ours(s.header)}
                         for s in observer.left],
            "delivered": [{**s.header.summary(), "mark": s.mark, "ours": is_ours(s.header)}
                          for s in observer.delivered],
            "warnings": list(host.warnings),
        }
        return KernelRun(trace, result, raw_log, err, evidence)


def run_trace(snapshot_dir: Path, args: list[str], *, timeout: float = 10) -> KernelRun:
    """Rebuild the snapshot, send one packet (``pktpath trace`` arguments), tear down."""
    spec = parse_args(args)
    peer_macs = {spec.iif: spec.mac_src} if spec.iif and spec.mac_src else {}
    with Sandbox(Path(snapshot_dir), peer_macs=peer_macs) as sandbox:
        return sandbox.send(args, timeout=timeout)
