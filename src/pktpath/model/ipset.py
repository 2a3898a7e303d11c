"""ipset sets as the kernel holds them, and the kernel's membership test.

The data follows ``net/netfilter/ipset/`` (ipset 7.21 / Linux 6.18): one ``IpSet`` per set,
its create options, and its entries in the order they were added (``ipset save`` order).
Entries are stored the way the kernel stores them after its ``*_uadt()`` function ran: ranges
and CIDRs of exact-address dimensions expanded into single addresses, addresses masked by the
set's netmask, ``hash:net`` ranges split into CIDRs (``ip_set_range_to_cidr``), timeouts and
counters filled in with the set defaults.  The parser in ``pktpath.parse.ipset_save`` does
that expansion.

``probe()`` / ``test()`` mirror ``ip_set_test()`` (ip_set_core.c) and the type's ``kadt``
function for an IPv4 packet:

* the rule must give at least as many src/dst flags as the type has dimensions, and the set's
  family must be the packet's or unspecified (``hash:mac``, ``bitmap:port``, ``list:set``);
  otherwise the test fails;
* each dimension reads the packet's source or destination address, port or MAC address
  (``ip4addrptr``, ``ip_set_get_ip4_port``), the in/out device (``hash:net,iface``) or
  ``skb->mark`` (``hash:ip,mark``, whose flag is ignored);
* types with network dimensions try the prefix lengths present in the set from the most
  specific down (``mtype_test_cidrs`` in ip_set_hash_gen.h; two-net types nest the second
  dimension's lengths inside the first's) and the first entry found decides; a ``nomatch``
  entry makes the test fail, unless ``--return-nomatch`` inverts the result;
* ``list:set`` tests its member sets in order (``list_set_ktest``).

Sets are values: frozen, hashable, compared by content (entry order only matters for
``list:set``).  A lookup index is built lazily, once per set.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pktpath.errors import SourceLoc

# ---------------------------------------------------------------- kernel constants
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136
#: ip_set_proto_with_ports() (ip_set_getport.h)
PROTOS_WITH_PORTS = frozenset({IPPROTO_TCP, IPPROTO_SCTP, IPPROTO_UDP, IPPROTO_UDPLITE})
#: bitmap:port only takes TCP and UDP ports (ip_set_get_ip_port(), ip_set_bitmap_port.c)
BITMAP_PORT_PROTOS = frozenset({IPPROTO_TCP, IPPROTO_UDP})

IPSET_DIM_MAX = 6
IPSET_MAXNAMELEN = 32
IPSET_MAX_COMMENT_SIZE = 255
IPSET_BITMAP_MAX_RANGE = 0xFFFF
IPSET_MAX_TIMEOUT = (0xFFFFFFFF >> 1) // 1000  # ip_set_timeout_uget() clamps to this
IFNAMSIZ = 16
DEFAULT_MAXELEM = 65536
DEFAULT_LIST_SIZE = 8


class Family(enum.StrEnum):
    """A set's family (set->family): NFPROTO_IPV4, NFPROTO_IPV6 or NFPROTO_UNSPEC."""

    INET = "inet"
    INET6 = "inet6"
    UNSPEC = "unspec"

    @property
    def host_mask(self) -> int:
        """HOST_MASK: address width in bits."""
        return 128 if self is Family.INET6 else 32


class Dim(enum.Enum):
    """What one element dimension holds."""

    IP = "ip"  # one address (ranges and CIDRs are expanded at add time)
    NET = "net"  # a network: address + prefix length
    PORT = "port"  # protocol + port (hash types), or a bare port (bitmap:port)
    IFACE = "iface"  # interface name, maybe physdev:
    MARK = "mark"  # skb->mark (the dimension's src/dst flag is ignored)
    MAC = "mac"  # Ethernet address
    NAME = "name"  # a member set (list:set)


class Dir(enum.StrEnum):
    """One src/dst flag of ``--match-set NAME src,dst``."""

    SRC = "src"
    DST = "dst"


@dataclass(frozen=True, slots=True)
class SetType:
    """A row of the set-type table: what ``ipset create NAME TYPE`` accepts and how the
    kernel tests it.  Option tuples are in the order ``ipset save`` prints them (the
    ``.args`` arrays of libipset's newest type revision)."""

    name: str
    dims: tuple[Dim, ...]
    nomatch: bool  # IPSET_TYPE_NOMATCH: entries may be 'nomatch', --return-nomatch applies
    family: Family | None  # fixed family, or None: the 'family' create option (default inet)
    create_opts: tuple[str, ...]
    add_opts: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    net0: bool = False  # IP_SET_HASH_WITH_NET0: /0 is a valid network
    #: dimensions that accept FROM-TO / IP/CIDR ranges on add (IPv4 only)
    range_dims: frozenset[int] = frozenset()
    #: create options accepted and ignored (backward compatibility)
    ignored_opts: tuple[str, ...] = ()

    @property
    def dimension(self) -> int:
        """set->type->dimension (IPSET_DIM_*): the flags a rule must give at least."""
        return len(self.dims)

    @property
    def is_hash(self) -> bool:
        return self.name.startswith("hash:")

    @property
    def is_bitmap(self) -> bool:
        return self.name.startswith("bitmap:")

    @property
    def net_dims(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.dims) if d is Dim.NET)


_HASH_HEAD = ("family", "hashsize", "maxelem")
_EXT = ("timeout", "counters", "comment", "forceadd", "skbinfo", "bucketsize", "initval")
_HASH_CREATE = _HASH_HEAD + _EXT
_ADD = ("timeout", "packets", "bytes", "comment", "skbmark", "skbprio", "skbqueue")
_ADD_NOMATCH = ("timeout", "nomatch", "packets", "bytes", "comment", "skbmark", "skbprio", "skbqueue")
_OLD = ("probes", "resize")
_OLD_FTN = ("probes", "resize", "from", "to", "network")

SET_TYPES: Mapping[str, SetType] = {
    t.name: t
    for t in (
        SetType("hash:ip", (Dim.IP,), False, None,
                _HASH_HEAD + ("netmask", "bitmask") + _EXT, _ADD, ("iphash",),
                range_dims=frozenset({0}), ignored_opts=_OLD + ("gc",)),
        SetType("hash:net", (Dim.NET,), True, None, _HASH_CREATE, _ADD_NOMATCH, ("nethash",),
                range_dims=frozenset({0}), ignored_opts=_OLD),
        SetType("hash:ip,port", (Dim.IP, Dim.PORT), False, None,
                _HASH_CREATE + ("netmask", "bitmask"), _ADD, ("ipporthash",),
                range_dims=frozenset({0, 1}), ignored_opts=_OLD_FTN),
        SetType("hash:net,port", (Dim.NET, Dim.PORT), True, None, _HASH_CREATE, _ADD_NOMATCH,
                ("netporthash",), range_dims=frozenset({0, 1}), ignored_opts=_OLD),
        SetType("hash:ip,port,ip", (Dim.IP, Dim.PORT, Dim.IP), False, None, _HASH_CREATE, _ADD,
                ("ipportiphash",), range_dims=frozenset({0, 1}), ignored_opts=_OLD_FTN),
        SetType("hash:ip,port,net", (Dim.IP, Dim.PORT, Dim.NET), True, None, _HASH_CREATE,
                _ADD_NOMATCH, ("ipportnethash",), range_dims=frozenset({0, 1, 2}),
                ignored_opts=_OLD_FTN),
        SetType("hash:net,iface", (Dim.NET, Dim.IFACE), True, None, _HASH_CREATE,
                ("timeout", "nomatch", "wildcard", "packets", "bytes", "comment", "skbmark",
                 "skbprio", "skbqueue"),
                ("netifacehash",), net0=True, range_dims=frozenset({0})),
        SetType("hash:ip,mark", (Dim.IP, Dim.MARK), False, None,
                ("family", "markmask", "hashsize", "maxelem") + _EXT, _ADD, ("ipmarkhash",),
                range_dims=frozenset({0}), ignored_opts=_OLD_FTN),
        SetType("hash:net,net", (Dim.NET, Dim.NET), True, None,
                _HASH_CREATE + ("bitmask", "netmask"), _ADD_NOMATCH, ("netnethash",),
                range_dims=frozenset({0, 1})),
        SetType("hash:net,port,net", (Dim.NET, Dim.PORT, Dim.NET), True, None, _HASH_CREATE,
                _ADD_NOMATCH, ("netportnethash",), net0=True, range_dims=frozenset({0, 1, 2})),
        SetType("hash:mac", (Dim.MAC,), False, Family.UNSPEC,
                ("hashsize", "maxelem") + _EXT, _ADD, ("machash",)),
        SetType("hash:ip,mac", (Dim.IP, Dim.MAC), False, None, _HASH_CREATE, _ADD, ("ipmachash",)),
        SetType("bitmap:ip", (Dim.IP,), False, Family.INET,
                ("range", "netmask", "timeout", "counters", "comment", "skbinfo"), _ADD, ("ipmap",),
                range_dims=frozenset({0})),
        SetType("bitmap:ip,mac", (Dim.IP, Dim.MAC), False, Family.INET,
                ("range", "timeout", "counters", "comment", "skbinfo"), _ADD, ("macipmap",)),
        SetType("bitmap:port", (Dim.PORT,), False, Family.UNSPEC,
                ("range", "timeout", "counters", "comment", "skbinfo"), _ADD, ("portmap",),
                range_dims=frozenset({0})),
        SetType("list:set", (Dim.NAME,), False, Family.UNSPEC,
                ("size", "timeout", "counters", "comment", "skbinfo"),
                ("timeout", "before", "after", "packets", "bytes", "comment", "skbmark", "skbprio",
                 "skbqueue"),
                ("setlist",)),
    )
}

TYPE_ALIASES: Mapping[str, str] = {a: t.name for t in SET_TYPES.values() for a in t.aliases}


# ---------------------------------------------------------------- element parts
@dataclass(frozen=True, slots=True, order=True)
class Net:
    """A network of a NET dimension: the address (already masked) and its prefix length."""

    addr: int
    cidr: int


@dataclass(frozen=True, slots=True, order=True)
class ProtoPort:
    """A PORT dimension of a hash type.  ICMP "ports" are ``type << 8 | code``; protocols
    without ports store port 0 (the kernel's ``*_uadt`` forces it)."""

    proto: int
    port: int


@dataclass(frozen=True, slots=True, order=True)
class Iface:
    """An IFACE dimension: ``[physdev:]NAME``; ``wildcard`` makes NAME a prefix."""

    name: str
    physdev: bool = False
    wildcard: bool = False


#: One dimension's value: an address, mark or MAC (int), a bare port (bitmap:port, int),
#: a Net, a ProtoPort, an Iface, a set name (str), or None (bitmap:ip,mac without a MAC).
Part = int | Net | ProtoPort | Iface | str | None


@dataclass(frozen=True, slots=True)
class SkbInfo:
    """The skbinfo extension: what ``-j SET --map-set`` copies to the packet."""

    mark: int = 0
    mask: int = 0
    prio: int = 0  # MAJOR << 16 | MINOR
    queue: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One element of a set with its flags and extension values.

    ``timeout`` is the remaining lifetime at snapshot time (0: permanent) in a set created
    with ``timeout``; ``packets``/``bytes`` are set in a set with ``counters``."""

    elem: tuple[Part, ...]
    nomatch: bool = False
    timeout: int | None = None
    packets: int | None = None
    bytes: int | None = None
    comment: str | None = None
    skbmark: tuple[int, int] | None = None  # (mark, mask)
    skbprio: int | None = None
    skbqueue: int | None = None

    @property
    def skbinfo(self) -> SkbInfo:
        mark, mask = self.skbmark or (0, 0)
        return SkbInfo(mark, mask, self.skbprio or 0, self.skbqueue or 0)


@dataclass(frozen=True, slots=True)
class CreateOptions:
    """The ``create`` line's options, as the kernel keeps them (``ipset save`` prints them)."""

    family: Family = Family.INET
    hashsize: int | None = None
    maxelem: int | None = None
    timeout: int | None = None  # default entry timeout; presence = timeout extension
    counters: bool = False
    comment: bool = False
    skbinfo: bool = False
    forceadd: bool = False
    netmask: int | None = None  # prefix length (hash:ip, hash:ip,port, hash:net,net, bitmap:ip)
    bitmask: int | None = None  # address-sized mask (hash:ip, hash:ip,port, hash:net,net)
    range: tuple[int, int] | None = None  # bitmap: first..last address or port
    markmask: int | None = None  # hash:ip,mark
    bucketsize: int | None = None
    initval: int | None = None
    size: int | None = None  # list:set


class _Index:
    """Lookup structure of one set: entries grouped by the key the kernel compares
    (its hash bucket key / bitmap id), and the prefix lengths present per NET dimension,
    most specific first (h->nets[])."""

    __slots__ = ("buckets", "cidrs")

    def __init__(self, ipset: IpSet) -> None:
        t = ipset.settype
        self.buckets: dict[Any, list[Entry]] = {}
        for e in ipset.entries:
            self.buckets.setdefault(bucket_key(t, e.elem), []).append(e)
        self.cidrs: dict[int, tuple[int, ...]] = {}
        for i in t.net_dims:
            lens = {p.cidr for e in ipset.entries if isinstance(p := e.elem[i], Net)}
            self.cidrs[i] = tuple(sorted(lens, reverse=True))


@dataclass(frozen=True, slots=True, eq=False)
class IpSet:
    """One set: name, type (canonical name, a key of ``SET_TYPES``), options, entries."""

    name: str
    type: str
    opts: CreateOptions = CreateOptions()
    entries: tuple[Entry, ...] = ()
    origin: SourceLoc | None = None
    _index: _Index | None = field(default=None, init=False, repr=False)

    @property
    def settype(self) -> SetType:
        return SET_TYPES[self.type]

    @property
    def family(self) -> Family:
        return self.settype.family or self.opts.family

    def _content(self) -> tuple[Any, ...]:
        entries: Any = self.entries if self.type == "list:set" else frozenset(self.entries)
        return (self.name, self.type, self.opts, entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IpSet):
            return NotImplemented
        return self._content() == other._content()

    def __hash__(self) -> int:
        return hash(self._content())

    def index(self) -> _Index:
        idx = self._index
        if idx is None:
            idx = _Index(self)
            object.__setattr__(self, "_index", idx)
        return idx

    def find(self, elem: tuple[Part, ...]) -> Entry | None:
        """The stored entry the kernel considers equal to ``elem`` (mtype_data_equal)."""
        for e in self.index().buckets.get(bucket_key(self.settype, elem), ()):
            if same_elem(self.settype, e.elem, elem):
                return e
        return None


def bucket_key(t: SetType, elem: tuple[Part, ...]) -> Any:
    """The part of an element the kernel hashes on (HKEY) or indexes a bitmap by."""
    if t.name == "hash:net,iface":
        net, iface = elem
        assert isinstance(net, Net) and isinstance(iface, Iface)
        return (net.addr, net.cidr, iface.physdev)  # hash_netiface4_elem_hashed
    if t.name == "bitmap:ip,mac":
        return elem[0]
    if t.name == "list:set":
        return elem[0]
    return elem


def same_elem(t: SetType, stored: tuple[Part, ...], elem: tuple[Part, ...]) -> bool:
    """mtype_data_equal() for two elements in the same bucket."""
    if t.name == "hash:net,iface":
        a, b = stored[1], elem[1]
        assert isinstance(a, Iface) and isinstance(b, Iface)
        if a.wildcard:
            return b.name.startswith(a.name)
        return a.name == b.name
    if t.name == "bitmap:ip,mac":
        return stored[0] == elem[0]
    return stored == elem


# ---------------------------------------------------------------- address helpers
def netmask(cidr: int, bits: int = 32) -> int:
    """ip_set_netmask(): the mask of a prefix length."""
    full = (1 << bits) - 1
    return (full << (bits - cidr)) & full if cidr else 0


def effective_bitmask(opts: CreateOptions, bits: int = 32) -> int:
    """h->bitmask: from ``netmask`` or ``bitmask`` (all ones when neither is given)."""
    if opts.netmask is not None:
        return netmask(opts.netmask, bits)
    if opts.bitmask is not None:
        return opts.bitmask
    return (1 << bits) - 1


def range_to_cidr(start: int, end: int, bits: int = 32) -> tuple[int, int]:
    """ip_set_range_to_cidr(): the biggest network starting at ``start`` that ends at or
    before ``end``; returns (its last address, its prefix length)."""
    for cidr in range(0, bits + 1):
        size = 1 << (bits - cidr)
        if start % size == 0 and start + size - 1 <= end:
            return start + size - 1, cidr
    raise AssertionError("unreachable: a /32 always fits")


def split_range(start: int, end: int, bits: int = 32) -> Iterator[Net]:
    """A FROM-TO range as the networks hash:net's uadt adds for it."""
    while True:
        last, cidr = range_to_cidr(start, end, bits)
        yield Net(start, cidr)
        if last >= end:
            return
        start = last + 1


# ---------------------------------------------------------------- the packet side
@dataclass(frozen=True, slots=True)
class PacketView:
    """What the kernel's kadt functions read from an IPv4 packet.

    ``mac_src``/``mac_dst`` are None when the skb has no Ethernet header (locally generated
    packets in OUTPUT/POSTROUTING): MAC dimensions then never match.  ``in_dev``/``out_dev``
    are par->state->in/out (None when the hook has no such device)."""

    src: int
    dst: int
    proto: int
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    fragoff: int = 0
    mac_src: int | None = None
    mac_dst: int | None = None
    in_dev: str | None = None
    out_dev: str | None = None
    mark: int = 0
    family: Family = Family.INET


def packet_port(pv: PacketView, src: bool) -> ProtoPort | None:
    """ip_set_get_ip4_port(): the (protocol, port) of a PORT dimension, or None when the
    kernel gives up (protocol 0, a non-first fragment of a protocol with ports or ICMP)."""
    if pv.proto <= 0:
        return None
    if pv.fragoff:
        if pv.proto in PROTOS_WITH_PORTS or pv.proto == IPPROTO_ICMP:
            return None
        return ProtoPort(pv.proto, 0)
    if pv.proto in PROTOS_WITH_PORTS:
        port = pv.sport if src else pv.dport
        return ProtoPort(pv.proto, port or 0)
    if pv.proto == IPPROTO_ICMP:
        return ProtoPort(pv.proto, ((pv.icmp_type or 0) << 8) | (pv.icmp_code or 0))
    return ProtoPort(pv.proto, 0)


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of one ``ip_set_test()``.

    ``matched`` is what the kernel returns (after ``--return-nomatch``).  ``entry`` is the
    entry that decided, a nomatch entry included, and ``set_name`` the set holding it (a
    member set for list:set).  ``counted`` lists, in the kernel's order, the entries whose
    counters ``--packets-*``/``--bytes-*`` would be checked: the kernel takes the first one
    whose counters pass.  ``reason`` says why nothing was looked up."""

    matched: bool
    entry: Entry | None = None
    set_name: str = ""
    counted: tuple[Entry, ...] = ()
    skbinfo: SkbInfo | None = None
    reason: str = ""


def probe(ipset: IpSet, sets: Mapping[str, IpSet], pv: PacketView, dirs: tuple[Dir, ...],
          *, return_nomatch: bool = False) -> Probe:
    """ip_set_test() for one packet: see the module docstring."""
    t = ipset.settype
    if len(dirs) < t.dimension:
        return Probe(False, set_name=ipset.name,
                     reason=f"{t.name} has {t.dimension} dimension(s), the rule gives {len(dirs)}")
    if ipset.family is not Family.UNSPEC and ipset.family is not pv.family:
        return Probe(False, set_name=ipset.name,
                     reason=f"set family {ipset.family} does not apply to an {pv.family} packet")
    if t.name == "list:set":
        return _probe_list(ipset, sets, pv, dirs, return_nomatch)
    found = _candidates(ipset, pv, dirs)
    if isinstance(found, str):
        return Probe(False, set_name=ipset.name, reason=found)
    if not found:
        return Probe(False, set_name=ipset.name, reason="no entry")
    first = found[0]
    if t.name == "bitmap:ip,mac" and first.elem[1] is not None and first.elem[1] != _mac_of(pv, dirs):
        # bitmap_ipmac_do_test(): the IP's slot holds another MAC
        return Probe(False, first, ipset.name, (), None, "MAC differs")
    matched = not first.nomatch
    if return_nomatch and t.nomatch:
        matched = not matched
    info = first.skbinfo if ipset.opts.skbinfo else None
    return Probe(matched, first, ipset.name, tuple(found), info)


def test(ipset: IpSet, sets: Mapping[str, IpSet], pv: PacketView, dirs: tuple[Dir, ...],
         *, return_nomatch: bool = False) -> bool:
    """True when ``ip_set_test()`` would return 1: ``probe(...).matched``."""
    return probe(ipset, sets, pv, dirs, return_nomatch=return_nomatch).matched


def _probe_list(ipset: IpSet, sets: Mapping[str, IpSet], pv: PacketView, dirs: tuple[Dir, ...],
                return_nomatch: bool) -> Probe:
    """list_set_ktest(): the first member whose own test returns 1."""
    hits: list[tuple[Entry, Probe]] = []
    for e in ipset.entries:
        member = sets.get(str(e.elem[0]))
        if member is None:
            continue
        sub = probe(member, sets, pv, dirs, return_nomatch=return_nomatch)
        if sub.matched:
            hits.append((e, sub))
    if not hits:
        return Probe(False, set_name=ipset.name, reason="no member set matches")
    own, sub = hits[0]
    info = own.skbinfo if ipset.opts.skbinfo else sub.skbinfo
    return Probe(True, sub.entry, sub.set_name, tuple(h[0] for h in hits), info)


def _addr(pv: PacketView, d: Dir) -> int:
    return pv.src if d is Dir.SRC else pv.dst


def _mac_of(pv: PacketView, dirs: tuple[Dir, ...], dim: int = 1) -> int | None:
    return pv.mac_src if dirs[dim] is Dir.SRC else pv.mac_dst


def _candidates(s: IpSet, pv: PacketView, dirs: tuple[Dir, ...]) -> list[Entry] | str:
    """The entries the type's kadt + mtype_test compare equal to the packet, in the order
    the kernel meets them; a string says why the kadt function gave up (-EINVAL etc.)."""
    t = s.settype
    idx = s.index()
    b = idx.buckets
    name = t.name
    bits = 32

    def port(dim: int) -> ProtoPort | None:
        return packet_port(pv, dirs[dim] is Dir.SRC)

    if name == "hash:ip":
        ip = _addr(pv, dirs[0]) & effective_bitmask(s.opts)
        if ip == 0:
            return "a zero address never matches hash:ip"
        return list(b.get((ip,), ()))
    if name == "hash:ip,port":
        pp = port(1)
        if pp is None:
            return "no port information (protocol 0 or a fragment)"
        ip = _addr(pv, dirs[0]) & effective_bitmask(s.opts)
        if ip == 0:
            return "a zero address never matches hash:ip,port"
        return list(b.get((ip, pp), ()))
    if name == "hash:ip,port,ip":
        pp = port(1)
        if pp is None:
            return "no port information (protocol 0 or a fragment)"
        return list(b.get((_addr(pv, dirs[0]), pp, _addr(pv, dirs[2])), ()))
    if name == "hash:ip,mark":
        mark = pv.mark & (0xFFFFFFFF if s.opts.markmask is None else s.opts.markmask)
        return list(b.get((_addr(pv, dirs[0]), mark), ()))
    if name == "hash:mac":
        mac = _mac_of(pv, dirs, 0)
        if not mac:
            return "no Ethernet source/destination address in the packet"
        return list(b.get((mac,), ()))
    if name == "hash:ip,mac":
        mac = _mac_of(pv, dirs, 1)
        if not mac:
            return "no Ethernet source/destination address in the packet"
        return list(b.get((_addr(pv, dirs[0]), mac), ()))
    if name == "bitmap:ip":
        ip = _addr(pv, dirs[0])
        assert s.opts.range is not None
        if not s.opts.range[0] <= ip <= s.opts.range[1]:
            return "address outside the bitmap's range"
        return list(b.get((ip & netmask(s.opts.netmask or 32),), ()))
    if name == "bitmap:ip,mac":
        ip = _addr(pv, dirs[0])
        assert s.opts.range is not None
        if not s.opts.range[0] <= ip <= s.opts.range[1]:
            return "address outside the bitmap's range"
        if not _mac_of(pv, dirs, 1):
            return "no Ethernet source/destination address in the packet"
        return list(b.get(ip, ()))
    if name == "bitmap:port":
        pp = port(0)
        if pp is None or pp.proto not in BITMAP_PORT_PROTOS:
            return "bitmap:port only matches TCP and UDP ports"
        assert s.opts.range is not None
        if not s.opts.range[0] <= pp.port <= s.opts.range[1]:
            return "port outside the bitmap's range"
        return list(b.get((pp.port,), ()))

    # Types with networks: mtype_test_cidrs(), most specific prefix first.
    out: list[Entry] = []
    if name == "hash:net":
        if not idx.cidrs[0]:
            return "empty set"
        a = _addr(pv, dirs[0])
        for c in idx.cidrs[0]:
            out.extend(b.get((Net(a & netmask(c, bits), c),), ()))
        return out
    if name == "hash:net,port":
        pp = port(1)
        if pp is None:
            return "no port information (protocol 0 or a fragment)"
        a = _addr(pv, dirs[0])
        for c in idx.cidrs[0]:
            out.extend(b.get((Net(a & netmask(c, bits), c), pp), ()))
        return out
    if name == "hash:ip,port,net":
        pp = port(1)
        if pp is None:
            return "no port information (protocol 0 or a fragment)"
        a, a2 = _addr(pv, dirs[0]), _addr(pv, dirs[2])
        for c in idx.cidrs[2]:
            out.extend(b.get((a, pp, Net(a2 & netmask(c, bits), c)), ()))
        return out
    if name == "hash:net,net":
        bm = effective_bitmask(s.opts)
        a, a2 = _addr(pv, dirs[0]) & bm, _addr(pv, dirs[1]) & bm
        for c in idx.cidrs[0]:
            for c2 in idx.cidrs[1]:
                out.extend(b.get((Net(a & netmask(c), c), Net(a2 & netmask(c2), c2)), ()))
        return out
    if name == "hash:net,port,net":
        pp = port(1)
        if pp is None:
            return "no port information (protocol 0 or a fragment)"
        a, a2 = _addr(pv, dirs[0]), _addr(pv, dirs[2])
        for c in idx.cidrs[0]:
            for c2 in idx.cidrs[2]:
                out.extend(b.get((Net(a & netmask(c), c), pp, Net(a2 & netmask(c2), c2)), ()))
        return out
    if name == "hash:net,iface":
        dev = (pv.in_dev if dirs[1] is Dir.SRC else pv.out_dev) or ""
        if not dev:
            return "no " + ("input" if dirs[1] is Dir.SRC else "output") + " device at this hook"
        a = _addr(pv, dirs[0])
        probe_iface = Iface(dev)
        for c in idx.cidrs[0]:
            bucket = b.get((a & netmask(c), c, False), [])
            hits = [e for e in bucket if same_elem(t, e.elem, (None, probe_iface))]
            out.extend(hits)
            if bucket:
                # IP_SET_HASH_WITH_MULTI: an entry for this network with another interface
                # stops the walk; less specific networks are not tried.
                break
        return out
    raise AssertionError(f"unknown set type {name}")


# ---------------------------------------------------------------- helpers for callers
def xt_reference_error(sets: Mapping[str, IpSet], name: str, family: Family = Family.INET) -> str | None:
    """What iptables says when a rule names this set (libxt_set.h get_set_byname()), or None
    when the reference is fine.  The loader turns a message into SnapshotInconsistent."""
    s = sets.get(name)
    if s is None:
        return f"Set {name} doesn't exist."
    if s.family is not Family.UNSPEC and s.family is not family:
        fam = "IPv6" if s.family is Family.INET6 else "IPv4"
        return f"The protocol family of set {name} is {fam}, which is not applicable."
    return None


def packet_element(s: IpSet, pv: PacketView, dirs: tuple[Dir, ...]) -> tuple[Part, ...] | str:
    """The element the type's kadt function builds for an ADD or DEL from this packet
    (what ``-j SET --add-set`` would store), or why it builds none.  Network dimensions take
    the most specific prefix length present in the set, or the host mask when it is empty
    (INIT_CIDR(h->nets[0].cidr[n], HOST_MASK))."""
    t = s.settype
    if len(dirs) < t.dimension:
        return f"{t.name} has {t.dimension} dimension(s), the rule gives {len(dirs)}"
    if s.family is not Family.UNSPEC and s.family is not pv.family:
        return f"set family {s.family} does not apply to an {pv.family} packet"
    if t.name == "list:set":
        return "list:set adds to the first member set that accepts the element"
    idx = s.index()
    parts: list[Part] = []
    for i, kind in enumerate(t.dims):
        d = dirs[i]
        if kind is Dim.IP:
            a = _addr(pv, d)
            if i == 0 and t.name in ("hash:ip", "hash:ip,port"):
                a &= effective_bitmask(s.opts)
                if a == 0:
                    return f"a zero address cannot be stored in {t.name}"
            if t.name == "bitmap:ip" or t.name == "bitmap:ip,mac":
                assert s.opts.range is not None
                if not s.opts.range[0] <= a <= s.opts.range[1]:
                    return "address outside the bitmap's range"
                a &= netmask(s.opts.netmask or 32)
            parts.append(a)
        elif kind is Dim.NET:
            cidrs = idx.cidrs.get(i, ())
            c = cidrs[0] if cidrs else 32
            a = _addr(pv, d)
            if t.name == "hash:net,net":
                a &= effective_bitmask(s.opts)
            parts.append(Net(a & netmask(c), c))
        elif kind is Dim.PORT:
            pp = packet_port(pv, d is Dir.SRC)
            if pp is None:
                return "no port information (protocol 0 or a fragment)"
            if t.name == "bitmap:port":
                assert s.opts.range is not None
                if pp.proto not in BITMAP_PORT_PROTOS or not s.opts.range[0] <= pp.port <= s.opts.range[1]:
                    return "not a TCP/UDP port inside the bitmap's range"
                parts.append(pp.port)
            else:
                parts.append(pp)
        elif kind is Dim.IFACE:
            dev = (pv.in_dev if d is Dir.SRC else pv.out_dev) or ""
            if not dev:
                return "no " + ("input" if d is Dir.SRC else "output") + " device at this hook"
            parts.append(Iface(dev))
        elif kind is Dim.MARK:
            parts.append(pv.mark & (0xFFFFFFFF if s.opts.markmask is None else s.opts.markmask))
        elif kind is Dim.MAC:
            mac = pv.mac_src if d is Dir.SRC else pv.mac_dst
            if not mac:
                return "no Ethernet source/destination address in the packet"
            parts.append(mac)
    return tuple(parts)
