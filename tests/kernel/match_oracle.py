"""A small kernel oracle for match/target cross-checks: two throw-away network namespaces
joined by a veth pair, a ruleset loaded into the receiving one with iptables-legacy-restore,
one packet sent from the peer on an AF_PACKET socket (or from a local socket inside the
receiver), and the per-rule packet counters read back with ``iptables-legacy-save -c``.

Only namespaces this module creates are touched: each is named ``ppx-<pid>-<n>{a,b}`` and
deleted in ``finally`` (KeyboardInterrupt included).  The initial namespace is never
changed: every command runs with ``ip -n`` / ``ip netns exec`` or in a forked child that
has entered the namespace with setns().
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()

# Test addresses (RFC 2544 benchmarking range): nothing outside our namespaces uses them.
PEER_ADDR = "198.18.0.2"  # the sender, in namespace "a" on device "veth-a"
HOST_ADDR = "198.18.0.1"  # the receiver, in namespace "b" on device "veth-b"
PREFIX_LEN = 24
PEER_DEV = "veth-a"
PEER_MAC = "02:00:00:00:0a:01"  # fixed, so -m mac cases can name it
HOST_DEV = "veth-b"

COUNTER_RE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+)")
POLICY_RE = re.compile(r"^:(\S+) (\S+) \[(\d+):(\d+)\]")


class OracleError(RuntimeError):
    """A namespace command failed (its stderr is in the message)."""


def available() -> str | None:
    """None when the oracle can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables-legacy-restore)"
    for tool in ("ip", "iptables-legacy-restore", "iptables-legacy-save"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")
                   + ["/usr/sbin", "/sbin"]):
            return f"{tool} is not installed"
    try:
        import scapy  # noqa: F401
    except ImportError:
        return "scapy is not installed"
    return None


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise OracleError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


# ----------------------------------------------------------------------------------- packets
@dataclass(frozen=True)
class Probe:
    """The one packet to send, as the pktpath Packet describes it (plus raw extras)."""

    src: str = PEER_ADDR
    dst: str = HOST_ADDR
    proto: str = "tcp"  # tcp udp icmp sctp esp ah dccp or a number
    sport: int = 40000
    dport: int = 80
    flags: str = "S"  # TCP flags, scapy spelling (S, SA, A, FPU, SEC ...)
    ttl: int = 64
    tos: int = 0
    ident: int = 1
    length: int | None = None  # total IP length; the payload is padded with zeros to reach it
    payload: bytes = b""
    tcp_options: tuple[tuple[str, object], ...] = ()
    icmp_type: int = 8
    icmp_code: int = 0
    icmp_id: int = 1
    spi: int = 0x100
    dst_mac: str | None = None  # None: the receiver's own MAC (PACKET_HOST)

    def build(self, src_mac: str, dst_mac: str) -> bytes:
        from scapy.layers.inet import ICMP, IP, TCP, UDP
        from scapy.layers.ipsec import AH, ESP
        from scapy.layers.l2 import Ether
        from scapy.layers.sctp import SCTP, SCTPChunkInit
        from scapy.packet import Packet, Raw

        ip = IP(src=self.src, dst=self.dst, ttl=self.ttl, tos=self.tos, id=self.ident)
        l4: Packet
        if self.proto == "tcp":
            l4 = TCP(sport=self.sport, dport=self.dport, flags=self.flags, seq=1000,
                     ack=1 if "A" in self.flags else 0, options=list(self.tcp_options))
        elif self.proto == "udp":
            l4 = UDP(sport=self.sport, dport=self.dport)
        elif self.proto == "icmp":
            l4 = ICMP(type=self.icmp_type, code=self.icmp_code, id=self.icmp_id, seq=1)
        elif self.proto == "sctp":
            l4 = SCTP(sport=self.sport, dport=self.dport, tag=0) / SCTPChunkInit(init_tag=1)
        elif self.proto == "esp":
            l4 = ESP(spi=self.spi, seq=1)
        elif self.proto == "ah":
            l4 = AH(spi=self.spi, seq=1, nh=59)
        elif self.proto == "dccp":
            # DCCP-Request (type 0), X=1: 16-byte generic header + 4-byte service code.
            hdr = (self.sport.to_bytes(2, "big") + self.dport.to_bytes(2, "big") + bytes([5, 0])
                   + b"\x00\x00" + bytes([0x01, 0]) + b"\x00\x00" + b"\x00\x00\x00\x00\x00\x01" + b"\x00" * 4)
            l4 = Raw(hdr)
            ip.proto = 33
        else:
            ip.proto = int(self.proto)
            l4 = Raw(b"")
        pkt = ip / l4
        if self.payload:
            pkt = pkt / Raw(self.payload)
        if self.length is not None:
            have = len(bytes(pkt))
            if have < self.length:
                pkt = pkt / Raw(b"\x00" * (self.length - have))
        # Rebuild from scratch so every length and checksum is computed (K15).
        frame = Ether(src=src_mac, dst=self.dst_mac or dst_mac) / pkt
        return bytes(Ether(bytes(frame)))


# ------------------------------------------------------------------------------- namespaces
def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(ns: str, fn: Callable[[], None], *, uid: int | None = None, gid: int | None = None,
             timeout: float = 10.0) -> None:
    """Run ``fn`` in a forked child inside namespace ``ns`` (as uid/gid when given)."""
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            _setns(f"/run/netns/{ns}")
            if gid is not None:
                os.setgroups([])
                os.setgid(gid)
            if uid is not None:
                os.setuid(uid)
            fn()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            try:
                os.write(2, f"in_netns({ns}): {exc!r}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise OracleError(f"child in {ns} timed out")
        time.sleep(0.01)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OracleError(f"child in {ns} failed (exit {os.waitstatus_to_exitcode(status)})")


@dataclass
class Pair:
    """Two namespaces: ``a`` (the peer that sends) and ``b`` (the host under test)."""

    base: str
    a: str
    b: str
    peer_mac: str = ""
    host_mac: str = ""
    created: list[str] = field(default_factory=list)

    def ip(self, ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "-n", ns, *args], check=check)

    def exec(self, ns: str, *argv: str, input: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *argv], input=input, check=check)


def _new_base() -> str:
    sweep_stale()
    return f"ppx-{os.getpid()}-{next(_counter)}"


def sweep_stale() -> None:
    """Delete ``ppx-<pid>-...`` namespaces whose creating process is gone (a test runner killed
    before its ``finally`` ran).  Namespaces of live processes and other prefixes are left alone."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"ppx-(\d+)-\d+[a-z]?", name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            run(["ip", "netns", "del", name], check=False)
        except PermissionError:
            pass  # alive (another user's process)


def _mac(pair: Pair, ns: str, dev: str) -> str:
    out = json.loads(pair.ip(ns, "-j", "link", "show", dev).stdout)
    return str(out[0]["address"])


def _wait_up(pair: Pair, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = True
        for ns, dev in ((pair.a, PEER_DEV), (pair.b, HOST_DEV)):
            info = json.loads(pair.ip(ns, "-j", "link", "show", dev).stdout)[0]
            if info.get("operstate") != "UP" or "LOWER_UP" not in info.get("flags", []):
                ok = False
        if ok:
            time.sleep(0.3)  # a freshly brought-up veth briefly drops what is sent on it (K15)
            return
        time.sleep(0.05)
    raise OracleError("veth pair did not come up")


@contextmanager
def namespace_pair(host_setup: Sequence[Sequence[str]] = (), sysctls: dict[str, str] | None = None
                   ) -> Iterator[Pair]:
    """Create the two namespaces and the veth pair; delete both on the way out."""
    base = _new_base()
    pair = Pair(base, base + "a", base + "b")
    try:
        for ns in (pair.a, pair.b):
            run(["ip", "netns", "add", ns])
            pair.created.append(ns)
        pair.ip(pair.a, "link", "add", PEER_DEV, "type", "veth", "peer", "name", HOST_DEV, "netns", pair.b)
        pair.ip(pair.a, "link", "set", PEER_DEV, "address", PEER_MAC)
        pair.ip(pair.a, "addr", "add", f"{PEER_ADDR}/{PREFIX_LEN}", "dev", PEER_DEV)
        pair.ip(pair.b, "addr", "add", f"{HOST_ADDR}/{PREFIX_LEN}", "dev", HOST_DEV)
        for key, value in (sysctls or {}).items():
            pair.exec(pair.b, "sysctl", "-qw", f"{key}={value}")
        for ns, dev in ((pair.a, PEER_DEV), (pair.b, HOST_DEV), (pair.a, "lo"), (pair.b, "lo")):
            pair.ip(ns, "link", "set", dev, "up")
        for argv in host_setup:
            pair.ip(pair.b, *argv)
        # The peer stays silent: no RST or ICMP error answers what the host sends it.
        pair.exec(pair.a, "iptables-legacy-restore",
                  input="*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
        pair.peer_mac = _mac(pair, pair.a, PEER_DEV)
        pair.host_mac = _mac(pair, pair.b, HOST_DEV)
        _wait_up(pair)
        yield pair
    finally:
        for ns in reversed(pair.created):
            run(["ip", "netns", "del", ns], check=False)


# ------------------------------------------------------------------------------ one exchange
@dataclass(frozen=True)
class Outcome:
    counters: dict[str, int]  # "filter:INPUT:1" -> packets; "filter:INPUT:policy" too
    delivered: bool | None
    save: str  # iptables-legacy-save -c output
    net_json: dict[str, str]  # ip -j addr/link/route/rule output of the receiver


def parse_counters(save: str) -> dict[str, int]:
    out: dict[str, int] = {}
    table = ""
    index: dict[str, int] = {}
    for line in save.splitlines():
        if line.startswith("*"):
            table, index = line[1:], {}
        elif m := POLICY_RE.match(line):
            if m.group(2) != "-":
                out[f"{table}:{m.group(1)}:policy"] = int(m.group(3))
        elif m := COUNTER_RE.match(line):
            chain = m.group(3)
            index[chain] = index.get(chain, 0) + 1
            out[f"{table}:{chain}:{index[chain]}"] = int(m.group(1))
    return out


def _in_delivers(pair: Pair) -> int:
    snmp = pair.exec(pair.b, "cat", "/proc/net/snmp").stdout.splitlines()
    names = next(line.split() for line in snmp if line.startswith("Ip:"))
    values = [line.split() for line in snmp if line.startswith("Ip:")][1]
    return int(values[names.index("InDelivers")])


def _net_json(pair: Pair) -> dict[str, str]:
    return {
        "ip-addr.json": pair.ip(pair.b, "-j", "addr", "show").stdout,
        "ip-link.json": pair.ip(pair.b, "-j", "-d", "link", "show").stdout,
        "ip-route.json": pair.ip(pair.b, "-j", "route", "show", "table", "all").stdout,
        "ip-rule.json": pair.ip(pair.b, "-j", "rule", "show").stdout,
    }


def send_from_peer(pair: Pair, probe: Probe) -> None:
    frame = probe.build(pair.peer_mac, pair.host_mac)

    def send() -> None:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            s.bind((PEER_DEV, 0))
            s.send(frame)
        finally:
            s.close()

    in_netns(pair.a, send)


def send_local(pair: Pair, probe: Probe, uid: int | None = None, gid: int | None = None) -> None:
    """A UDP datagram (or TCP connect attempt) sent by a socket inside the receiver namespace."""
    def send() -> None:
        if probe.proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            try:
                s.bind(("0.0.0.0", probe.sport))
                try:
                    s.sendto(probe.payload or b"x", (probe.dst, probe.dport))
                except PermissionError:
                    pass  # EPERM: OUTPUT dropped it
            finally:
                s.close()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.bind(("0.0.0.0", probe.sport))
                try:
                    s.connect((probe.dst, probe.dport))
                except (BlockingIOError, PermissionError, ConnectionRefusedError):
                    pass
                time.sleep(0.05)
            finally:
                s.close()

    in_netns(pair.b, send, uid=uid, gid=gid)


def run_case(ruleset: str, probe: Probe, *, local: bool = False, uid: int | None = None,
             gid: int | None = None, host_setup: Sequence[Sequence[str]] = (),
             sysctls: dict[str, str] | None = None,
             before: Callable[[Pair], None] | None = None,
             during: Callable[[Pair], None] | None = None) -> Outcome:
    """Load ``ruleset`` into the receiver, send ``probe`` once, read the counters back.

    ``local`` sends it from a socket inside the receiver (OUTPUT path) as ``uid``/``gid``;
    ``before`` runs before the ruleset is loaded (e.g. to create nfacct objects), ``during``
    after it is loaded and before the packet is sent."""
    with namespace_pair(host_setup, sysctls) as pair:
        if before is not None:
            before(pair)
        pair.exec(pair.b, "iptables-legacy-restore", input=ruleset)
        if during is not None:
            during(pair)
        delivers_before = _in_delivers(pair)
        if local:
            send_local(pair, probe, uid, gid)
        else:
            send_from_peer(pair, probe)
        time.sleep(0.1)
        save = pair.exec(pair.b, "iptables-legacy-save", "-c").stdout
        delivered = _in_delivers(pair) > delivers_before
        return Outcome(parse_counters(save), delivered, save, _net_json(pair))


def save_roundtrip(ruleset: str) -> str:
    """What iptables-legacy-save prints after iptables-legacy-restore of ``ruleset``
    (in a scratch namespace).  Raises OracleError with the restore error when refused."""
    base = _new_base() + "s"
    created = False
    try:
        run(["ip", "netns", "add", base])
        created = True
        run(["ip", "netns", "exec", base, "iptables-legacy-restore"], input=ruleset)
        return run(["ip", "netns", "exec", base, "iptables-legacy-save"]).stdout
    finally:
        if created:
            run(["ip", "netns", "del", base], check=False)


def saved_rules(save: str) -> list[str]:
    """The ``-A`` lines of an iptables-save dump, in order."""
    return [line for line in save.splitlines() if line.startswith("-A ")]
