"""Replay a ``pktpath flow`` exchange on the real kernel, with real endpoints.

    kernel = run_flow(Path("snap/"), ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "203.0.113.10",
                                      "--proto", "tcp", "--sport", "40001", "--dport", "80",
                                      "--then", "reply:SYN,ACK", "--then", "reply:ACK"])
    kernel["packets"][i]["trace" | "result" | "conntrack" | "packet"]   # shaped like a flow case's expected.json

The host is the sandbox's (``pktpath.sandbox.Sandbox``: one namespace built from the
snapshot, one peer namespace per interface).  This module only adds what an *exchange*
needs, on top of the sandbox's public pieces:

* **endpoints**: the peer namespace behind ``--iif`` is the client, every peer a server.
  The sandbox makes every address local in a peer (``local 0.0.0.0/0`` in its local table:
  it answers ARP for anything and accepts any destination); for real sockets the peer's
  *own* packets must leave by its link instead, so the local-table rule moves from
  priority 0 to 100 and a priority-50 rule ``iif lo`` (= locally generated) sends them via
  a gateway that is a permanent neighbour with the host interface's MAC (no ARP).
* **real sockets**: the client connects from ``--src:--sport`` to ``--dst:--dport``
  (TCP ``connect()``, UDP ``connect()`` + send, an ICMP echo on a raw socket with
  ``--icmp-id``); with ``--local`` that socket is in the host namespace (``SO_MARK``
  ``--mark``).  Servers listen on ``0.0.0.0`` on every candidate port (the flow's
  ``--dport`` and the ports the ruleset's DNAT/REDIRECT rules map to) in every peer --
  where every address is local, so whatever address NAT chose is served; the client's
  peer too, for hairpin NAT -- and in the host namespace (a REDIRECTed or local service).
  ``listen=False``: none anywhere.  TCP handshakes, RSTs of closed ports, ICMP echo
  replies and port-unreachables come from the real stacks; UDP servers answer each
  datagram from the address it was sent to (``IP_PKTINFO``).
* **one packet at a time**: every packet an endpoint sends is held in its namespace by an
  ``NFQUEUE`` rule (filter OUTPUT, queue 0, read here over nfnetlink) until the previous
  packet is finished in the host and ``conntrack -L`` of the host namespace has been
  read.  The host itself is not changed: its own answers to a packet it received (a
  listener's SYN,ACK, an echo reply, a RST, a local ``connect()``'s ACK) leave at once, so
  the table between the two cannot be observed: ``null``, as in the recorded cases.  A
  UDP answer of the host comes from this module's socket, after the table was read.  A
  host packet counts as such an answer only if it goes back to the packet's source and is
  not a retransmission of an earlier one (a step slower than the stack's 1 s RTO).
* **TRACE lines** are read from /dev/kmsg while holding the sandbox's send lock
  (``hostlog.send_window``; the sockets are closed, and their FINs traced, before it is
  released).  A packet's lines are those of its window with its IP ID, total length,
  protocol and TCP flags (NAT changes none of them), entering from the wire (``IN=`` set)
  or, for the host's own packets, sent locally (``IN=`` empty).  The result (disposition,
  oif, packet) is decided from the same evidence as the sandbox's
  (``pktpath.sandbox.disposition.decide``: frames captured leaving the host, local
  delivery seen by raw sockets with SO_RCVMARK, TRACE verdicts, SNMP counters).

Scope: ``--iif`` and ``--local`` first packets of tcp/udp/icmp echo; ``--then reply[:SPEC]``
(the real stack's answer, checked against SPEC), ``--then original`` for udp/icmp,
``--reply-iif none``.  ``--reply-iif IFACE`` (a server answering over another link) is not
supported.  Everything happens inside namespaces created here (the sandbox's), to
addresses inside them; all of it is torn down on every exit path.
"""

from __future__ import annotations

import argparse
import contextlib
import errno as errno_mod
import os
import re
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pktpath.sandbox import Sandbox, SandboxError, hostlog
from pktpath.sandbox.builder import PEER_IFNAME, Iface
from pktpath.sandbox.disposition import Evidence, decide
from pktpath.sandbox.kmsg import KmsgReader, TraceLine, packet_fields, parse_trace_line, trace_entry
from pktpath.sandbox.netns import NetNS
from pktpath.sandbox.observe import Observer, Seen, delta, snmp
from pktpath.sandbox.packet import IPv4Header, parse_ipv4
from pktpath.sandbox.ruleset import rule_text, verdict
from pktpath.sandbox.spec import DEFAULT_DPORT, DEFAULT_SPORT, PROTOS, PacketSpec

QUIET = 0.25  # no news for this long (after MIN_WAIT): the host is done with the packet
MIN_WAIT = 0.3
SETTLE = 0.05  # after decisive evidence: time for the last records to land
STEP_TIMEOUT = 5.0
GATEWAY = "169.254.0.1"  # an endpoint's next hop: a permanent neighbour with the host's MAC
ENDPOINT_TABLE = "200"
TCP_FLAG_BITS = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20),
                 ("ECE", 0x40), ("CWR", 0x80))
LETTERS = dict(zip("FSRPAUEC", (n for n, _ in TCP_FLAG_BITS), strict=True))
IP_PKTINFO = 8
IP_FREEBIND = 15
SO_MARK = 36
ECHO_SEQ = 1
ECHO_PAYLOAD = b"pktpath flow harness echo data!!"  # 32 bytes: IP total length 60
TO_DESTINATION = re.compile(r"--to-destination\s+[^\s:]*:(\d+(?:-\d+)?)")
TO_PORTS = re.compile(r"--to-ports?\s+(\d+(?:-\d+)?)")


class HarnessError(Exception):
    """The exchange could not be reproduced (not a disagreement with pktpath)."""


# ------------------------------------------------------------------ flow arguments
@dataclass(frozen=True)
class Step:
    kind: str  # reply / original
    flags: str | None = None  # "SYN,ACK" (canonical order) for tcp
    icmp_error: tuple[int, int] | None = None


@dataclass(frozen=True)
class FlowArgs:
    iif: str | None
    src: str | None
    dst: str
    proto: int
    sport: int | None
    dport: int | None
    icmp_type: int
    icmp_code: int
    icmp_id: int
    mark: int
    steps: tuple[Step, ...]
    reply_iif: str | None

    @property
    def proto_name(self) -> str:
        return {v: k for k, v in PROTOS.items()}[self.proto]


def flags_text(bits: int) -> str:
    return ",".join(n for n, b in TCP_FLAG_BITS if bits & b)


def canonical_flags(text: str) -> str:
    bits = 0
    for name in filter(None, text.upper().split(",")):
        found = dict(TCP_FLAG_BITS).get(name.strip())
        if found is None:
            raise HarnessError(f"unknown TCP flag {name!r}")
        bits |= found
    return flags_text(bits)


def parse_flow_args(args: list[str]) -> FlowArgs:
    p = argparse.ArgumentParser(prog="pktpath flow", add_help=False, exit_on_error=False)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--iif")
    where.add_argument("--local", action="store_true")
    for opt in ("--src", "--sport", "--dport", "--icmp-type", "--icmp-id", "--mark", "--reply-iif", "--format"):
        p.add_argument(opt)
    p.add_argument("--dst", required=True)
    p.add_argument("--proto", default="tcp")
    p.add_argument("--then", action="append", default=[])
    try:
        ns = p.parse_args(args)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise HarnessError(f"bad flow arguments {args}: {exc}") from None
    proto = PROTOS.get(ns.proto.lower())
    if proto is None:
        raise HarnessError(f"--proto {ns.proto}: the harness replays tcp, udp and icmp")
    if ns.iif is not None and ns.src is None:
        raise HarnessError("--iif needs --src")
    icmp_type, _, icmp_code = (ns.icmp_type or "8/0").partition("/")
    if proto == 1 and int(icmp_type) != 8:
        raise HarnessError("the harness replays ICMP echo requests only")
    steps = []
    for text in ns.then:
        kind, _, spec = text.partition(":")
        if kind not in ("reply", "original"):
            raise HarnessError(f"--then {text}")
        if spec.startswith("icmp-"):
            t, _, c = spec[5:].partition("/")
            steps.append(Step(kind, icmp_error=(int(t), int(c or 0))))
        else:
            steps.append(Step(kind, canonical_flags(spec) if spec else None))
    if ns.reply_iif not in (None, "none"):
        raise HarnessError("--reply-iif IFACE (an answer over another link) is not supported by the harness")
    ported = proto in (6, 17)
    return FlowArgs(
        iif=ns.iif, src=ns.src, dst=ns.dst, proto=proto,
        sport=int(ns.sport or DEFAULT_SPORT) if ported else None,
        dport=int(ns.dport or DEFAULT_DPORT) if ported else None,
        icmp_type=int(icmp_type), icmp_code=int(icmp_code or 0), icmp_id=int(ns.icmp_id or "0", 0),
        mark=int(ns.mark or "0", 0), steps=tuple(steps), reply_iif=ns.reply_iif)


def candidate_ports(fa: FlowArgs, iptables: str) -> list[int]:
    """Where servers listen: --dport and every port a DNAT/REDIRECT rule of the ruleset maps to."""
    ports = [fa.dport] if fa.dport is not None else []
    specs = [m.group(1) for m in TO_DESTINATION.finditer(iptables)] + [m.group(1) for m in TO_PORTS.finditer(iptables)]
    for spec in specs:
        lo, _, hi = spec.partition("-")
        if lo.isdigit():
            ports += [p for p in range(int(lo), min(int(hi or lo), int(lo) + 15) + 1) if p not in ports]
    return ports


# ------------------------------------------------------------------ nfnetlink queue
NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NF_DROP, NF_ACCEPT = 0, 1


def _nla(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)


def _nfq_msg(msg: int, flags: int, seq: int, queue: int, attrs: list[bytes]) -> bytes:
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), NFNL_SUBSYS_QUEUE << 8 | msg, NLM_F_REQUEST | flags, seq, 0) + body


@dataclass
class Held:
    """A packet an endpoint sent, held in its namespace's NFQUEUE."""

    peer: str  # the host interface it will enter by
    packet_id: int
    header: IPv4Header
    payload: bytes
    icmp_id: int | None


class NfQueue:
    """Queue 0 of one namespace: endpoint packets wait here for a verdict."""

    def __init__(self, ns: NetNS, peer: str) -> None:
        self.peer = peer
        with ns.entered():
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self._seq = 0
        try:
            self._request(NFQNL_MSG_CONFIG, [_nla(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))])
            self._request(NFQNL_MSG_CONFIG, [_nla(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET))])
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _request(self, msg: int, attrs: list[bytes]) -> None:
        self._seq += 1
        self.sock.send(_nfq_msg(msg, NLM_F_ACK, self._seq, 0, attrs))
        data = self.sock.recv(65536)
        _, kind = struct.unpack_from("=IH", data)
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, 16)
            if code:
                raise SandboxError(f"nfnetlink_queue config: {os.strerror(-code)}")

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[Held]:
        out: list[Held] = []
        while True:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return out
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if length < 16:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET):
                    held = self._packet(data[off + 20:off + length])
                    if held is not None:
                        out.append(held)
                off += (length + 3) & ~3

    def _packet(self, attrs: bytes) -> Held | None:
        packet_id, payload = None, b""
        off = 0
        while off + 4 <= len(attrs):
            n, kind = struct.unpack_from("=HH", attrs, off)
            if n < 4:
                break
            value = attrs[off + 4:off + n]
            if kind & 0x3FFF == NFQA_PACKET_HDR:
                packet_id = struct.unpack_from("!I", value)[0]
            elif kind & 0x3FFF == NFQA_PAYLOAD:
                payload = value
            off += (n + 3) & ~3
        header = parse_ipv4(payload)
        if packet_id is None or header is None:
            return None
        icmp_id = None
        if header.proto == 1 and header.icmp is not None and header.icmp[0] in (0, 8):
            ihl = (payload[0] & 0x0F) * 4
            icmp_id = struct.unpack_from("!H", payload, ihl + 4)[0]
        return Held(self.peer, packet_id, header, payload, icmp_id)

    def verdict(self, held: Held, accept: bool) -> None:
        self._seq += 1
        hdr = _nla(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT if accept else NF_DROP, held.packet_id))
        self.sock.send(_nfq_msg(NFQNL_MSG_VERDICT, 0, self._seq, 0, [hdr]))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()  # the kernel drops whatever is still queued


# ------------------------------------------------------------------ conntrack -L
def parse_conntrack(text: str) -> list[dict[str, Any]]:
    """``conntrack -L`` lines -> flow-json.md entries (no timeout, no use count)."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or not words[1].isdigit():
            continue
        entry: dict[str, Any] = {"proto": words[0], "state": None, "orig": {}, "reply": {}, "flags": [],
                                 "mark": 0, "zone": 0}
        tuples: list[dict[str, Any]] = []
        for w in words[3:]:
            if w.startswith("[") and w.endswith("]"):
                entry["flags"].append(w[1:-1])
            elif "=" not in w:
                entry["state"] = w
            else:
                key, _, value = w.partition("=")
                if key == "src":
                    tuples.append({})
                if key in ("src", "dst"):
                    tuples[-1][key] = value
                elif key in ("sport", "dport", "type", "code", "id") and tuples:
                    tuples[-1][key] = int(value)
                elif key == "mark":
                    entry["mark"] = int(value, 0)
                elif key in ("zone", "zone-orig"):
                    entry["zone"] = int(value)
        if len(tuples) >= 2:
            entry["orig"], entry["reply"] = tuples[0], tuples[1]
        entry["flags"] = sorted(entry["flags"])
        out.append(entry)
    return out


def read_conntrack(ns: NetNS) -> list[dict[str, Any]]:
    proc = ns.exec(["conntrack", "-L", "-f", "ipv4"], check=False)
    if proc.returncode != 0:
        raise HarnessError(f"conntrack -L in {ns.name}: {proc.stderr.strip()}")
    return parse_conntrack(proc.stdout)


# ------------------------------------------------------------------ endpoints
def make_endpoint(iface: Iface) -> None:
    """Let the peer namespace of ``iface`` talk through the host with real sockets."""
    batch = (f"rule del pref 0\nrule add pref 100 lookup local\n"
             f"rule add pref 50 iif lo lookup {ENDPOINT_TABLE}\n"
             f"route add unicast {GATEWAY} dev {PEER_IFNAME} table local\n"  # not local: a valid gateway
             f"neigh replace {GATEWAY} lladdr {iface.mac} dev {PEER_IFNAME} nud permanent\n"
             f"route add default via {GATEWAY} dev {PEER_IFNAME} onlink table {ENDPOINT_TABLE}\n")
    iface.peer.ip("-batch", "-", input=batch)
    iface.peer.exec(["iptables-legacy", "-w", "30", "-A", "OUTPUT", "-o", PEER_IFNAME, "-j", "NFQUEUE",
                     "--queue-num", "0"], timeout=40)


def icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, ECHO_SEQ) + ECHO_PAYLOAD
    return body[:2] + struct.pack("!H", icmp_checksum(body)) + body[4:]


@dataclass
class Window:
    """What happened since one packet was handed to the host."""

    lines: list[str] = field(default_factory=list)
    left: list[Seen] = field(default_factory=list)
    delivered: list[Seen] = field(default_factory=list)
    answered: bool = False  # an endpoint sent something (held) or a host socket got a datagram
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class Ident:
    """How a packet is recognised in kernel log lines and captures."""

    ip_id: int
    length: int
    proto: int
    flags: str | None  # TCP flags as parse_ipv4 letters ("SA"); None: not compared
    wire: bool  # entered from the wire (IN= set) or sent by the host (IN= empty)
    src: str | None = None  # the header as it entered the host
    dst: str | None = None
    seq: int | None = None  # TCP sequence number (NAT keeps it)

    def matches_line(self, fields: dict[str, str], text: str) -> bool:
        """One of this packet's log lines?  (Other namespaces log too: TRACE lines name none.)

        NAT rewrites the source or the destination at a hook, and the line is logged before
        the rewrite of its own hook, so a line always keeps the entry's source or its
        destination.
        """
        if fields.get("ID") != str(self.ip_id) or fields.get("LEN") != str(self.length):
            return False
        if fields.get("PROTO", "").lower() != {6: "tcp", 17: "udp", 1: "icmp"}.get(self.proto):
            return False
        if bool(fields.get("IN")) != self.wire:
            return False
        if self.seq is not None and fields.get("SEQ") != str(self.seq):
            return False
        if self.src is not None and fields.get("SRC") != self.src and fields.get("DST") != self.dst:
            return False
        return self.flags is None or line_flags(text) == self.flags

    def matches(self, h: IPv4Header) -> bool:
        return (h.id, h.len, h.proto) == (self.ip_id, self.length, self.proto) and (
            self.flags is None or h.tcp_flags == self.flags)


def line_flags(text: str) -> str | None:
    """TCP flags of a log line as parse_ipv4 letters (None for other protocols)."""
    head = text.split(" [", 1)[0]
    if "PROTO=TCP" not in head:
        return None
    words = set(head.split())
    return "".join(c for c in "FSRPAUEC" if LETTERS[c] in words)


def line_packet(fields: dict[str, str], text: str) -> dict[str, Any]:
    """The header a log line shows (for the host's own packets: as its stack built it)."""
    proto = fields.get("PROTO", "").lower()
    pkt: dict[str, Any] = {"src": fields.get("SRC"), "dst": fields.get("DST"), "proto": proto,
                           "id": int(fields.get("ID", "0")), "length": int(fields.get("LEN", "0")),
                           "mark": int(fields.get("MARK", "0"), 16)}
    if proto in ("tcp", "udp"):
        pkt["sport"], pkt["dport"] = int(fields.get("SPT", "0")), int(fields.get("DPT", "0"))
    if proto == "tcp":
        pkt["seq"], pkt["ack"] = int(fields.get("SEQ", "0")), int(fields.get("ACK", "0"))
        letters = line_flags(text) or ""
        pkt["tcp_flags"] = ",".join(LETTERS[c] for c in "FSRPAUEC" if c in letters)
        pkt["letters"] = letters
    if proto == "icmp":
        head = text.split(" [", 1)[0].split("PROTO=ICMP", 1)[-1]
        icmp = dict(w.partition("=")[::2] for w in head.split() if "=" in w)
        pkt["icmp_type"], pkt["icmp_code"] = int(icmp.get("TYPE", "0")), int(icmp.get("CODE", "0"))
        if "ID" in icmp:
            pkt["icmp_id"] = int(icmp["ID"])
    return pkt


@dataclass
class Record:
    """One packet of the exchange, before it becomes JSON."""

    sender: str  # "client", "host" or "server@IFACE"
    role: str
    ident: Ident | None  # None: a host packet not yet seen in the log
    packet: dict[str, Any] | None
    trace: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    conntrack: list[dict[str, Any]] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)  # header fields a host packet sent here must show


Datagram = tuple[socket.socket, bytes, tuple[str, int], str]


class Exchange:
    """Endpoints, sockets, queues and the log reader around one open Sandbox."""

    def __init__(self, sandbox: Sandbox, fa: FlowArgs, ports: list[int], listen: bool) -> None:
        self.host = sandbox.host
        self.fa = fa
        self.ports = ports
        self.listen = listen
        self.stack = contextlib.ExitStack()
        self.queues: dict[str, NfQueue] = {}
        self.listeners: list[socket.socket] = []
        self.host_udp: set[int] = set()  # filenos of the host namespace's UDP servers
        self.client: socket.socket | None = None
        self.held: list[Held] = []  # endpoint packets waiting for a verdict, in arrival order
        self.inbox: list[Datagram] = []  # datagrams a host UDP server got and has not answered
        self.window = Window()
        self.kmsg: KmsgReader | None = None

    # -------------------------------------------------------------- setup / teardown
    def __enter__(self) -> Exchange:
        try:
            self._setup()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _sock(self, ns: NetNS, kind: int, proto: int = 0) -> socket.socket:
        """A socket inside one of the sandbox's namespaces (never the caller's own)."""
        with ns.entered():
            s = socket.socket(socket.AF_INET, kind, proto)
        self.stack.callback(s.close)
        return s

    def _setup(self) -> None:
        peers = {name: i for name, i in self.host.ifaces.items() if i.carrier and i.admin_up}
        if self.fa.iif is not None and self.fa.iif not in peers:
            raise HarnessError(f"--iif {self.fa.iif}: no interface with a link of that name in the snapshot")
        for name, iface in peers.items():
            make_endpoint(iface)
            q = NfQueue(iface.peer, name)
            self.stack.callback(q.close)
            self.queues[name] = q
        if self.listen and self.fa.proto in (6, 17):
            # Every peer serves (the client's too: a hairpin NAT sends the packet back by its link).
            for name, ns in [*((n, i.peer) for n, i in peers.items()), ("host", self.host.ns)]:
                for port in self.ports:
                    if not (name == self.fa.iif and port == self.fa.sport):
                        self._server(ns, port)
        self.observer = Observer(self.host.ns, {n: (i.peer, PEER_IFNAME) for n, i in self.host.ifaces.items()},
                                 {1, 6, 17})
        self.stack.callback(self.observer.close)

    def _server(self, ns: NetNS, port: int) -> None:
        s = self._sock(ns, socket.SOCK_STREAM if self.fa.proto == 6 else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.fa.proto == 17:
            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.bind(("0.0.0.0", port))
        if self.fa.proto == 6:
            s.listen(16)
        elif ns is self.host.ns:
            self.host_udp.add(s.fileno())
        s.setblocking(False)
        self.listeners.append(s)

    # -------------------------------------------------------------- event pump
    def pump(self, wait: float) -> bool:
        """Read everything that is ready; True when something new arrived."""
        assert self.kmsg is not None
        fds: list[Any] = [self.kmsg.fd, *self.observer.fds(), *self.queues.values(), *self.listeners]
        if self.client is not None:
            fds.append(self.client)
        select.select(fds, [], [], wait)
        w = self.window
        news = False
        lines = self.kmsg.read_new()
        if lines:
            w.lines += lines
            news = True
        n_left, n_del = len(self.observer.left), len(self.observer.delivered)
        if self.observer.drain():
            w.left += self.observer.left[n_left:]
            w.delivered += self.observer.delivered[n_del:]
            news = True
        for q in self.queues.values():
            got = q.read()
            if got:
                self.held += got
                w.answered = news = True
        for s in self.listeners:
            if s.type == socket.SOCK_STREAM:
                with contextlib.suppress(BlockingIOError):
                    conn, _ = s.accept()
                    self.stack.callback(conn.close)
                continue
            while True:
                try:
                    data, anc, _, addr = s.recvmsg(2048, socket.CMSG_SPACE(12))
                except BlockingIOError:
                    break
                w.answered = news = True
                local = next((socket.inet_ntoa(p[8:12]) for lvl, k, p in anc
                              if lvl == socket.IPPROTO_IP and k == IP_PKTINFO), "0.0.0.0")
                if s.fileno() in self.host_udp:
                    self.inbox.append((s, data, addr, local))  # answered after conntrack -L
                else:
                    udp_answer((s, data, addr, local))  # held by the endpoint's queue anyway
        if self.client is not None and self.client.type != socket.SOCK_STREAM:
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                while self.client.recv(2048):
                    pass
        return news

    def wait(self, ident: Ident | None) -> None:
        """Until the host is done with the current packet (and quiet)."""
        t0 = last = time.monotonic()
        while True:
            if self.pump(0.02):
                last = time.monotonic()
            now = time.monotonic()
            w = self.window
            decisive = w.answered or (ident is not None and any(ident.matches(s.header)
                                                                for s in w.left + w.delivered))
            if decisive and now - last > SETTLE:
                return
            if (now - last > QUIET and now - t0 > MIN_WAIT) or now - t0 > STEP_TIMEOUT:
                return

    def new_window(self) -> Window:
        done, self.window = self.window, Window()
        return done

    # -------------------------------------------------------------- the initiator
    def start(self) -> str | None:
        """Packet 1 from the initiator's socket: the client peer's (held) or the host's (--local)."""
        fa = self.fa
        ns = self.host.ifaces[fa.iif].peer if fa.iif is not None else self.host.ns
        kind = {6: socket.SOCK_STREAM, 17: socket.SOCK_DGRAM, 1: socket.SOCK_RAW}[fa.proto]
        s = self._sock(ns, kind, socket.IPPROTO_ICMP if fa.proto == 1 else 0)
        self.client = s
        try:
            if fa.mark:
                s.setsockopt(socket.SOL_SOCKET, SO_MARK, fa.mark)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            s.setblocking(False)
            if fa.src is not None or fa.sport is not None:
                s.bind((fa.src or "0.0.0.0", fa.sport or 0))
            if fa.proto == 6:
                err = s.connect_ex((fa.dst, fa.dport or 0))
                if err not in (0, errno_mod.EINPROGRESS):
                    return errno_mod.errorcode.get(err, str(err))
            elif fa.proto == 17:
                s.connect((fa.dst, fa.dport or 0))
                s.send(b"hello")
            else:
                s.sendto(echo_request(fa.icmp_id), (fa.dst, 0))
        except OSError as exc:
            return errno_mod.errorcode.get(exc.errno or 0, str(exc.errno))
        return None

    def again(self) -> None:
        """The initiator sends again: one more datagram / echo request on the same socket."""
        assert self.client is not None
        if self.fa.proto == 17:
            self.client.send(b"again")
        elif self.fa.proto == 1:
            self.client.sendto(echo_request(self.fa.icmp_id), (self.fa.dst, 0))
        else:
            raise HarnessError("a TCP socket cannot be made to send a given segment on demand")

    def wait_held(self, peer: str, timeout: float = 1.0) -> Held | None:
        deadline = time.monotonic() + timeout
        while True:
            found = next((h for h in self.held if h.peer == peer), None)
            if found is not None or time.monotonic() > deadline:
                return found
            self.pump(0.02)

    def release(self, held: Held, accept: bool = True) -> None:
        self.held.remove(held)
        self.queues[held.peer].verdict(held, accept)


def udp_answer(d: Datagram) -> None:
    """A UDP server's answer: from the address the datagram was sent to (IP_PKTINFO)."""
    s, data, addr, local = d
    info = struct.pack("=i4s4s", 0, socket.inet_aton(local), bytes(4))
    s.sendmsg([b"re:" + data], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, addr)


# ------------------------------------------------------------------ attribution
def trace_of(host: Any, lines: list[str], ident: Ident) -> tuple[list[dict[str, Any]], str | None, list[str]]:
    """The packet's TRACE entries (snapshot numbering), the last verdict, its raw log lines."""
    trace: list[dict[str, Any]] = []
    raw: list[str] = []
    last: str | None = None
    for msg in lines:
        fields = packet_fields(msg)
        if not ident.matches_line(fields, msg):
            continue
        raw.append(msg)
        line: TraceLine | None = parse_trace_line(msg)
        if line is None:
            continue
        sid = host.insertion.to_snapshot_id(line.table, line.chain, line.kind, line.num)
        if sid is None:
            continue
        entry = trace_entry(line, rule_text(host.tables, line.table, line.chain, line.num))
        entry["id"] = sid
        trace.append(entry)
        last = verdict(host.tables, line.table, line.chain, line.kind, line.num)
    return trace, last, raw


def host_packets(lines: list[str], exclude: Ident | None) -> list[tuple[Ident, dict[str, Any]]]:
    """Packets the host sent itself in a window (first seen with IN= empty), in order."""
    out: list[tuple[Ident, dict[str, Any]]] = []
    for msg in lines:
        if not msg.startswith("TRACE: "):
            continue
        fields = packet_fields(msg)
        if fields.get("IN"):
            continue
        if exclude is not None and exclude.matches_line(fields, msg):
            continue
        proto = PROTOS.get(fields.get("PROTO", "").lower())
        if proto is None:
            continue
        pkt = line_packet(fields, msg)
        ident = Ident(pkt["id"], pkt["length"], proto, pkt.get("letters"), wire=False, src=pkt["src"],
                      dst=pkt["dst"], seq=pkt.get("seq"))
        if not any(i.matches_line(fields, msg) for i, _ in out):
            out.append((ident, pkt))
    return out


def packet_json(rec_packet: dict[str, Any]) -> dict[str, Any]:
    keep = ("iif", "local", "mark", "src", "dst", "proto", "id", "sport", "dport", "tcp_flags", "icmp_type",
            "icmp_code", "icmp_id")
    return {k: rec_packet[k] for k in keep if k in rec_packet}


def held_packet(h: Held) -> dict[str, Any]:
    hd = h.header
    pkt: dict[str, Any] = {"iif": h.peer, "local": False, "mark": 0, "src": hd.src, "dst": hd.dst,
                           "proto": {6: "tcp", 17: "udp", 1: "icmp"}.get(hd.proto, str(hd.proto)), "id": hd.id}
    if hd.proto in (6, 17):
        pkt["sport"], pkt["dport"] = hd.sport, hd.dport
    if hd.proto == 6:
        pkt["tcp_flags"] = ",".join(LETTERS[c] for c in "FSRPAUEC" if c in (hd.tcp_flags or ""))
    if hd.proto == 1 and hd.icmp is not None:
        pkt["icmp_type"], pkt["icmp_code"] = hd.icmp
        if h.icmp_id is not None:
            pkt["icmp_id"] = h.icmp_id
    return pkt


def spec_for(pkt: dict[str, Any], length: int) -> PacketSpec:
    """The sandbox's PacketSpec for decide(): only where the packet came from and its mark matter."""
    proto = PROTOS.get(str(pkt.get("proto")), 0)
    return PacketSpec(iif=pkt.get("iif"), src=pkt.get("src"), dst=str(pkt.get("dst")), proto=proto,
                      sport=pkt.get("sport"), dport=pkt.get("dport"), icmp_type=int(pkt.get("icmp_type") or 0),
                      icmp_code=int(pkt.get("icmp_code") or 0), tcp_flags="", mark=int(pkt.get("mark") or 0),
                      ttl=64, length=length, mac_src=None, uid=None)


# ------------------------------------------------------------------ the exchange
STOPS = ("dropped", "rejected", "unroutable")


def _judge(ex: Exchange, rec: Record, w: Window, err: str | None = None) -> None:
    """Fill a record's trace and result from one window's evidence."""
    assert rec.ident is not None and rec.packet is not None
    trace, last, raw = trace_of(ex.host, w.lines, rec.ident)
    left = [s for s in w.left if rec.ident.matches(s.header)]
    delivered = [s for s in w.delivered if rec.ident.matches(s.header)] if rec.ident.wire else []
    rec.trace = trace
    rec.result = decide(Evidence(spec_for(rec.packet, rec.ident.length), trace, last, left, delivered, err,
                                 w.counters))
    rec.evidence.update({
        "ip_id": rec.ident.ip_id, "raw_log": raw, "errno": err, "last_verdict": last,
        "captures": [{**s.header.summary(), "iface": s.iface} for s in left],
        "delivered": [{**s.header.summary(), "mark": s.mark} for s in delivered],
        "snmp_delta": w.counters})


def _check_step(step: Step, pkt: dict[str, Any], n: int) -> None:
    """The real stack's packet must be the one the flow's step describes."""
    what = f"step {n}: the real stack sent {packet_json(pkt)}"
    if step.flags is not None and pkt.get("tcp_flags") != step.flags:
        raise HarnessError(f"{what}; the flow asks for TCP {step.flags}")
    if step.icmp_error is not None and (pkt.get("proto"), pkt.get("icmp_type"), pkt.get("icmp_code")) != (
            "icmp", *step.icmp_error):
        raise HarnessError(f"{what}; the flow asks for ICMP {step.icmp_error}")
    if step.icmp_error is None and pkt.get("proto") == "icmp" and pkt.get("icmp_type") not in (0, 8):
        raise HarnessError(f"{what}; the flow asks for an answer, not an ICMP error")


def _pick(held: list[Held], peer: str, step: Step) -> Held | None:
    """The endpoint's first held packet, preferring one of the step's kind (not a retransmission)."""
    mine = [h for h in held if h.peer == peer]
    fits = [h for h in mine if (step.flags is None or held_packet(h).get("tcp_flags") == step.flags)
            and (step.icmp_error is None or h.header.icmp == step.icmp_error)]
    return fits[0] if fits else (mine[0] if mine else None)


def _initiator_expect(fa: FlowArgs) -> dict[str, Any]:
    """What the --local initiator's packets show at raw OUTPUT (before any NAT)."""
    expect: dict[str, Any] = {"dst": fa.dst, "proto": fa.proto_name}
    if fa.src is not None:
        expect["src"] = fa.src
    if fa.proto in (6, 17):
        expect.update(sport=fa.sport, dport=fa.dport)
    if fa.proto == 1:
        expect["icmp_id"] = fa.icmp_id
    return expect


def _answers(pkt: dict[str, Any], rec: Record, records: list[Record]) -> bool:
    """Is this packet of the host an answer to rec, which it received?

    It goes back to where rec came from; it is not a retransmission of one of the host's
    earlier packets (when a step took longer than the stack's 1 s RTO).
    """
    got = rec.result.get("packet") or {}
    if (pkt.get("src"), pkt.get("dst")) != (got.get("dst"), got.get("src")):
        return False
    if pkt.get("proto") in ("tcp", "udp") and (pkt.get("sport"), pkt.get("dport")) != (got.get("dport"),
                                                                                       got.get("sport")):
        return False
    if rec.ident is not None and rec.ident.seq is not None and "S" in (rec.ident.flags or "") and \
            pkt.get("ack") != (rec.ident.seq + 1) % 2**32:
        return False  # an answer to a SYN acknowledges it (SYN,ACK or RST,ACK)
    keys = ("src", "dst", "proto", "sport", "dport", "tcp_flags", "icmp_type", "icmp_code", "icmp_id", "id")
    return not any(r.packet is not None and all(r.packet.get(k) == pkt.get(k) for k in keys)
                   for r in records if r.ident is not None and not r.ident.wire)


def _role(prev: str, step: Step) -> str:
    if step.kind == "original":
        return "initiator"
    return "responder" if prev == "initiator" else "initiator"


def _held_record(held: Held, name: str, role: str) -> Record:
    h = held.header
    seq = struct.unpack_from("!I", held.payload, (held.payload[0] & 0x0F) * 4 + 4)[0] if h.proto == 6 else None
    return Record(name, role, Ident(h.id, h.len, h.proto, h.tcp_flags, wire=True, src=h.src, dst=h.dst, seq=seq),
                  held_packet(held))


def _exchange(ex: Exchange) -> list[Record]:
    """Hand the host one packet at a time; judge each from its window; read the table between."""
    fa = ex.fa
    records: list[Record] = []
    t0 = time.monotonic()
    before = snmp(ex.host.ns)
    err = ex.start()
    if fa.iif is not None:
        held = ex.wait_held(fa.iif)
        if held is None:
            raise HarnessError(f"the client socket sent nothing (errno {err})")
        rec = _held_record(held, "client", "initiator")
        ex.release(held)
        err = None
    else:
        rec = Record("host", "initiator", None, None, expect=_initiator_expect(fa))
    n = 1  # packets so far, rec included; the step after packet n is fa.steps[n - 1]
    while True:
        ex.wait(rec.ident)
        w = ex.new_window()
        w.counters = delta(before, snmp(ex.host.ns))
        if rec.ident is None:  # the host's own packet: known from its first log line
            found = [(i, p) for i, p in host_packets(w.lines, None)
                     if all(p.get(k) == v for k, v in rec.expect.items())]
            if found:
                rec.ident, first = found[0]
                rec.packet = {"iif": None, "local": True, **first}  # mark: as its first log line shows
            else:
                rec.ident = Ident(-1, -1, fa.proto, None, wire=False)
                rec.packet = {"iif": None, "local": True, "mark": fa.mark, "src": fa.src, "dst": fa.dst,
                              "proto": fa.proto_name, "sport": fa.sport, "dport": fa.dport}
        _judge(ex, rec, w, err)
        rec.evidence["t_done"] = round(time.monotonic() - t0, 3)
        records.append(rec)
        table = read_conntrack(ex.host.ns)
        others = host_packets(w.lines, rec.ident)
        answers = [(i, p) for i, p in others if _answers(p, rec, records)] \
            if rec.result["disposition"] == "local" else []
        if others:
            rec.evidence["host_packets_in_window"] = [packet_json(p) for _, p in others]
        if answers:
            # The host's own stack answered at once: its table between the two is not observable.
            rec.conntrack = None
            if n > len(fa.steps):
                break
            step, n = fa.steps[n - 1], n + 1
            ident, first = answers[0]
            ans = Record("host", _role(rec.role, step), ident, {"iif": None, "local": True, **first})
            _check_step(step, ans.packet or {}, n)
            _judge(ex, ans, w)
            ans.evidence["answered_at_once"] = True
            records.append(ans)
            rec = ans
        rec.conntrack = table
        if rec.result["disposition"] in STOPS or n > len(fa.steps):
            break

        # ---- the next packet: whoever the step names sends it
        step, n = fa.steps[n - 1], n + 1
        role = _role(rec.role, step)
        if step.kind == "original":
            sender = f"peer:{fa.iif}" if fa.iif is not None else "host"
        else:
            sender = "host" if rec.result["disposition"] == "local" else f"peer:{rec.result.get('oif')}"
        before = snmp(ex.host.ns)
        if sender == "host":
            if step.kind == "reply" and ex.inbox:
                d = ex.inbox.pop(0)
                expect = {"src": d[3], "dst": d[2][0], "sport": d[0].getsockname()[1], "dport": d[2][1]}
                udp_answer(d)
            elif fa.iif is None and fa.proto in (17, 1):
                expect = _initiator_expect(fa)
                ex.again()  # the --local initiator's socket
            else:
                raise HarnessError(f"step {n}: the host has nothing to answer with (no host socket got the "
                                   f"packet; last log lines {w.lines[-3:]})")
            rec = Record("host", role, None, None, expect=expect)
            continue
        peer = sender.split(":", 1)[1]
        if peer not in ex.queues:
            raise HarnessError(f"step {n}: the previous packet left by {peer!r}: no endpoint there")
        held = _pick(ex.held, peer, step)
        if held is None and peer == fa.iif and fa.proto in (17, 1):
            ex.again()  # the client's socket got the answer; it sends again
            ex.wait_held(peer)
            held = _pick(ex.held, peer, step)
        if held is None:
            raise HarnessError(f"step {n} ({step}): the endpoint behind {peer} sent nothing "
                               f"(held elsewhere: {[h.header.summary() for h in ex.held]})")
        name = "client" if peer == fa.iif and role == "initiator" else f"server@{peer}"
        nxt = _held_record(held, name, role)
        _check_step(step, nxt.packet or {}, n)
        if role == "responder" and fa.reply_iif == "none":
            ex.release(held, accept=False)
            records.append(Record(name, role, None, None, conntrack=table,
                                  result={"disposition": "not-received", "oif": None, "packet": {}},
                                  evidence={"dropped_at_endpoint": nxt.packet}))
            break
        ex.release(held)
        rec = nxt
    return records


def _to_json(records: list[Record], seconds: float, warnings: list[str]) -> dict[str, Any]:
    packets = []
    for i, r in enumerate(records, 1):
        packets.append({"step": i, "sender": r.sender, "role": r.role,
                        "packet": packet_json(r.packet) if r.packet is not None else None,
                        "trace": r.trace, "result": r.result, "conntrack": r.conntrack, "evidence": r.evidence})
    last = records[-1].result.get("disposition") if records else None
    return {"packets": packets, "end": last if last in (*STOPS, "not-received") else "end",
            "outcome": "completed" if last not in (*STOPS, "not-received") else f"{last}-step{len(records)}",
            "kernel": os.uname().release, "seconds": round(seconds, 3), "warnings": warnings}


@contextlib.contextmanager
def _send_lock() -> Iterator[KmsgReader]:
    """The sandbox's send window: no other sandbox logs TRACE lines meanwhile."""
    with hostlog.send_window():
        hostlog.ensure()
        kmsg = KmsgReader()
        try:
            yield kmsg
        finally:
            kmsg.close()


def run_flow(snapshot: Path, args: list[str], *, listen: bool = True) -> dict[str, Any]:
    """Rebuild the snapshot, replay the exchange ``pktpath flow SNAPSHOT args`` describes, tear down.

    ``listen=False``: no server socket anywhere (a SYN meets a closed port: RST; UDP: ICMP
    port unreachable).  Returns the exchange shaped like a flow case's expected.json.
    """
    fa = parse_flow_args(args)
    t0 = time.monotonic()
    snapshot = Path(snapshot)
    iptables = (snapshot / "iptables-save.txt").read_text() if snapshot.is_dir() else ""
    with Sandbox(snapshot) as sandbox, Exchange(sandbox, fa, candidate_ports(fa, iptables), listen) as ex:
        with _send_lock() as kmsg:
            ex.kmsg = kmsg
            try:
                records = _exchange(ex)
            finally:
                # Closing the sockets sends FINs (the host's are traced): still inside our log window.
                ex.kmsg = None
                ex.stack.close()
        return _to_json(records, time.monotonic() - t0, list(sandbox.host.warnings))
