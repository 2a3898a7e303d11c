"""What the kernel did with the packet, seen from outside netfilter.

* frames leaving the host: AF_PACKET sockets on the peer end of every veth (each in its
  own peer namespace), so a frame counts only once it really left the host;
* local delivery: raw IP sockets in the host namespace receive a copy of every datagram
  of their protocol that passed INPUT (``raw_local_deliver`` runs after LOCAL_IN), with
  its mark through SO_RCVMARK;
* counters: /proc/net/snmp and /proc/net/netstat of the host namespace.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from pktpath.sandbox.netns import NetNS
from pktpath.sandbox.packet import IPv4Header, parse_ipv4

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SO_MARK = 36
SO_RCVMARK = 75
ETH_HLEN = 14


@dataclass(frozen=True)
class Seen:
    """One IPv4 packet observed on a socket; ``iface`` is the host interface it left by."""

    header: IPv4Header
    iface: str | None
    mark: int | None


class Observer:
    """Sockets that watch one send; create before sending, close after."""

    def __init__(self, host: NetNS, peers: dict[str, tuple[NetNS, str]], protos: set[int]) -> None:
        self._peer_socks: list[tuple[socket.socket, str]] = []
        self._local_socks: list[socket.socket] = []
        try:
            for host_if, (ns, peer_if) in peers.items():
                with ns.entered():
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
                s.bind((peer_if, ETH_P_IP))
                s.setblocking(False)
                self._peer_socks.append((s, host_if))
            with host.entered():
                for proto in sorted(protos):
                    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
                    r.setsockopt(socket.SOL_SOCKET, SO_RCVMARK, 1)
                    r.setblocking(False)
                    self._local_socks.append(r)
        except BaseException:
            self.close()
            raise
        self.left: list[Seen] = []
        self.delivered: list[Seen] = []

    def fds(self) -> list[int]:
        return [s.fileno() for s, _ in self._peer_socks] + [s.fileno() for s in self._local_socks]

    def drain(self) -> int:
        """Read everything queued; returns how many packets were new."""
        new = 0
        for s, host_if in self._peer_socks:
            while True:
                try:
                    data, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == errno.ENETDOWN:
                        break  # a peer end without carrier (NO-CARRIER in the snapshot): nothing leaves there
                    raise
                if addr[2] == PACKET_OUTGOING:
                    continue  # what the peer itself sent (our injected frame)
                hdr = parse_ipv4(data[ETH_HLEN:])
                if hdr is not None:
                    self.left.append(Seen(hdr, host_if, None))
                    new += 1
        for r in self._local_socks:
            while True:
                try:
                    data, anc, _, _ = r.recvmsg(65535, socket.CMSG_SPACE(4))
                except BlockingIOError:
                    break
                mark = None
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == SO_MARK and len(payload) >= 4:
                        mark = struct.unpack("=I", payload[:4])[0]
                hdr = parse_ipv4(data)
                if hdr is not None:
                    self.delivered.append(Seen(hdr, None, mark))
                    new += 1
        return new

    def close(self) -> None:
        for s in [s for s, _ in self._peer_socks] + self._local_socks:
            with contextlib.suppress(OSError):
                s.close()


def _read_counters(path: Path) -> dict[str, int]:
    """Parse the header/value line pairs of /proc/net/snmp or /proc/net/netstat."""
    out: dict[str, int] = {}
    lines = path.read_text().splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        group, _, names = head.partition(":")
        _, _, nums = values.partition(":")
        for name, num in zip(names.split(), nums.split(), strict=False):
            with contextlib.suppress(ValueError):
                out[f"{group}.{name}"] = int(num)
    return out


def snmp(ns: NetNS) -> dict[str, int]:
    """IPv4 counters of the namespace (thread-self: /proc/self/net is the main thread's)."""
    with ns.entered():
        base = Path("/proc/thread-self/net")
        return {**_read_counters(base / "snmp"), **_read_counters(base / "netstat")}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] != before.get(k, 0)}
