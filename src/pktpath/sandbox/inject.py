"""Put the packet into the rebuilt host: from the wire (``--iif``) or from a local process.

``--iif``: an Ethernet frame written on a raw L2 socket at the far end of the veth, in
the peer namespace.  ``--local``: an IP_HDRINCL raw socket in the host namespace, so
TTL, ID, length and TCP flags are exactly as asked (connect() could not send a bare ACK
or a 40-byte SYN); SO_MARK is the socket mark, the socket is created with fsuid --uid
(its owner for ``-m owner`` and uid routing), IP_PKTINFO hands --src to the routing
lookup and IP_PROTOCOL its protocol.  Routing sees no ports (hdrincl sends have none).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import socket
import struct
import threading
from collections.abc import Iterator

from pktpath.sandbox.builder import PEER_IFNAME, Iface
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.netns import NetNS
from pktpath.sandbox.packet import build_frame, build_ip
from pktpath.sandbox.spec import PacketSpec

IP_PKTINFO = 8
IP_PROTOCOL = 52  # cmsg: the flow protocol of an IP_HDRINCL send
SO_MARK = 36
MARK_RULE_POS = 2  # right after the TRACE rule, which is first in raw PREROUTING

_libc = ctypes.CDLL(None, use_errno=True)


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


def predict_src(host: NetNS, spec: PacketSpec) -> str | None:
    """The source a local socket gets when it does not bind: ask the kernel's routing."""
    args = ["route", "get", spec.dst, "mark", str(spec.mark), "ipproto", spec.proto_name]
    if spec.uid is not None:
        args += ["uid", str(spec.uid)]
    proc = host.ip("-j", *args, check=False)
    if proc.returncode != 0:
        return None
    routes = json.loads(proc.stdout or "[]")
    return str(routes[0]["prefsrc"]) if routes and "prefsrc" in routes[0] else None


def _local_socket(host: NetNS, spec: PacketSpec) -> socket.socket:
    """A raw IP_HDRINCL socket in the host namespace, owned by --uid, marked --mark."""
    box: list[socket.socket] = []
    failure: list[BaseException] = []

    def work() -> None:  # own thread: setns and setfsuid then affect nothing else
        try:
            with host.entered(), _fsuid(spec.uid):
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


def send_local(host: NetNS, spec: PacketSpec, src: str | None, ident: int) -> str | None:
    """Send from a local process; returns the errno name when sendmsg() fails."""
    datagram = build_ip(spec, src or "0.0.0.0", ident)
    cmsgs = [(socket.SOL_IP, IP_PROTOCOL, struct.pack("i", spec.proto))]
    if spec.src:  # the routing lookup sees the source, as for a bound socket
        cmsgs.append((socket.SOL_IP, IP_PKTINFO, struct.pack("i4s4s", 0, socket.inet_aton(spec.src), bytes(4))))
    sock = _local_socket(host, spec)
    try:
        sock.sendmsg([datagram], cmsgs, 0, (spec.dst, 0))
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    finally:
        sock.close()
    return None


def send_wire(iface: Iface, spec: PacketSpec, ident: int) -> None:
    """Inject the frame on the far end of --iif (raw L2 socket in the peer namespace)."""
    frame = build_frame(spec, iface.mac, spec.mac_src or iface.peer_mac, ident)
    with iface.peer.entered():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
    try:
        s.bind((PEER_IFNAME, 0))
        s.send(frame)
    finally:
        s.close()


@contextlib.contextmanager
def ingress_mark(host: NetNS, spec: PacketSpec) -> Iterator[dict[str, tuple[int, ...]]]:
    """An skb mark on an arriving packet.

    veth scrubs the mark when a frame changes namespace and this kernel has no tc
    skbedit action, so a MARK rule goes right after the TRACE rule in raw PREROUTING for
    the duration of the send; its own TRACE entry is dropped and the rules after it are
    renumbered.  Yields the positions of such added rules, per raw chain.
    """
    if spec.iif is None or not spec.mark:
        yield {}
        return
    rule = ["PREROUTING", "-i", spec.iif, "-j", "MARK", "--set-xmark", f"{spec.mark:#x}/0xffffffff"]
    ipt = ["iptables-legacy", "-w", "30", "-t", "raw"]
    host.exec([*ipt, "-I", rule[0], str(MARK_RULE_POS), *rule[1:]], timeout=40)
    try:
        yield {"PREROUTING": (MARK_RULE_POS,)}
    finally:
        host.exec([*ipt, "-D", *rule], check=False, timeout=40)
