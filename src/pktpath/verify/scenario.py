"""Random scenarios for ``pktpath verify --random``: a host and one packet, from a seed.

Pure and deterministic: ``generate(seed, index)`` always returns the same scenario (its
own ``random.Random`` seeded from the pair; no I/O).  A scenario is what an administrator
would type -- interfaces with addresses, ``ip route``/``ip rule`` lines, sysctls, an
``ipset restore`` and an ``iptables-restore`` text -- plus the ``pktpath trace`` arguments
of the packet.  ``hostbuild`` turns it into a real namespace, ``collect`` snapshots that.

The ruleset covers raw/mangle/nat/filter with user chains, ``-j``/``-g``, the matches
tcp udp icmp multiport comment addrtype (``--limit-iface-in/out``) mark conntrack state
iprange length ttl mac set, and the targets ACCEPT DROP RETURN REJECT LOG MARK CONNMARK
DNAT SNAT MASQUERADE REDIRECT CT --notrack NOTRACK.  It is biased so rules match the
packet: addresses, ports, interfaces, lengths, TTLs and marks are mostly drawn from the
packet itself.  Only rules the kernel accepts are written (legality per table and hook
is the ``TARGETS``/``HOOK_LIMITED`` data below), so every scenario loads.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

IFPREFIX = "pkv-e"
SET_PREFIX = "pkv_set"
LOG_PREFIX = '"pkv-log "'
REMOTE_NETS = ("10.200.0.0/16", "100.64.0.0/10", "100.64.7.0/24", "198.18.0.0/15", "192.0.2.0/24",
               "198.51.100.0/24", "203.0.113.0/24", "172.20.0.0/16", "172.20.5.0/24", "192.168.77.0/24")
EXTRA_TABLES = ("100", "200", "1000")
PORTS = (22, 25, 53, 80, 123, 443, 993, 3306, 5432, 8080, 8443)
MARKS = (0x1, 0x2, 0x3, 0x4, 0x10, 0x20, 0x100, 0xFF, 0x1000)
MASKS = (0xFF, 0xFFFF, 0xFF00, 0x1, 0xF, 0xFFFFFFFF)
LENGTHS = (28, 38, 40, 50, 60, 72, 128, 140, 284, 296, 540, 552, 1028)
TTLS = (1, 2, 3, 5, 9)
CHAIN_NAMES = ("fw_x", "ssh_in", "web", "to-wan", "LOGDROP", "CHK", "mark-it", "nat_dst", "svc", "c1")
COMMENTS = ('"allow web"', '"temp-rule"', "x", '"kube svc"')

BUILTINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
TABLE_ODDS = {"raw": 0.75, "mangle": 0.5, "nat": 0.7, "filter": 0.85}
INCOMING = frozenset({"PREROUTING", "INPUT", "FORWARD"})  # hooks with an input device
OUTGOING = frozenset({"FORWARD", "OUTPUT", "POSTROUTING"})  # hooks with an output device

# Target -> (tables, hooks it is valid in: None = any), from the kernel's xt_target
# .table/.hooks and iptables' own refusals (DROP in nat, observed 11).
TARGETS: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {
    "ACCEPT": (frozenset(BUILTINS), None),
    "DROP": (frozenset({"raw", "mangle", "filter"}), None),
    "RETURN": (frozenset(BUILTINS), None),
    "LOG": (frozenset(BUILTINS), None),
    "MARK": (frozenset(BUILTINS), None),
    "CONNMARK": (frozenset(BUILTINS), None),
    "REJECT": (frozenset({"filter"}), frozenset({"INPUT", "FORWARD", "OUTPUT"})),
    "DNAT": (frozenset({"nat"}), frozenset({"PREROUTING", "OUTPUT"})),
    "REDIRECT": (frozenset({"nat"}), frozenset({"PREROUTING", "OUTPUT"})),
    "SNAT": (frozenset({"nat"}), frozenset({"POSTROUTING", "INPUT"})),
    "MASQUERADE": (frozenset({"nat"}), frozenset({"POSTROUTING"})),
    "CT": (frozenset({"raw"}), None),
    "NOTRACK": (frozenset({"raw"}), None),
}
TARGET_WEIGHTS = {"ACCEPT": 10, "DROP": 7, "RETURN": 8, "LOG": 6, "MARK": 20, "CONNMARK": 8, "REJECT": 9,
                  "DNAT": 25, "REDIRECT": 10, "SNAT": 15, "MASQUERADE": 12, "CT": 5, "NOTRACK": 4, "jump": 12,
                  "goto": 5}
# Fewer verdicts early in the path (raw, mangle), so that later tables are reached.
TABLE_TARGET_FACTOR = {("raw", "ACCEPT"): 0.4, ("raw", "DROP"): 0.3, ("mangle", "ACCEPT"): 0.4,
                       ("mangle", "DROP"): 0.3, ("nat", "ACCEPT"): 0.5, ("nat", "MARK"): 0.5}
# Matches valid only in some hooks (xt_match .hooks).
HOOK_LIMITED: dict[str, frozenset[str]] = {
    "mac": INCOMING,
    "limit-iface-in": INCOMING,
    "limit-iface-out": OUTGOING,
}
TCP_FLAGS = (("SYN", 40), ("ACK", 15), ("SYN,ACK", 10), ("FIN,ACK", 8), ("RST", 7), ("PSH,ACK", 10),
             ("FIN", 2), ("SYN,FIN", 2), ("FIN,PSH,URG", 1), ("RST,ACK", 3))


@dataclass
class Iface:
    name: str
    mac: str
    peer_mac: str
    addrs: list[str]  # "a.b.c.d/len", in the order they are added (later ones in a subnet: secondary)


@dataclass
class Scenario:
    seed: int
    index: int
    ifaces: list[Iface]
    lo_addrs: list[str]
    sysctl: dict[str, str]
    routes: list[str]
    rules: list[str]
    ipset: str
    iptables: str
    packet: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scenario:
        return cls(**{**data, "ifaces": [Iface(**i) for i in data["ifaces"]]})


@dataclass
class _Packet:
    local: bool
    iif: str | None
    src: str | None
    dst: str
    proto: str
    sport: int | None
    dport: int | None
    icmp: str | None
    flags: str | None
    mark: int
    uid: int | None
    ttl: int
    length: int
    mac_src: str | None

    def words(self) -> list[str]:
        w = ["--local"] if self.local else ["--iif", str(self.iif)]
        if self.src:
            w += ["--src", self.src]
        w += ["--dst", self.dst, "--proto", self.proto]
        if self.sport is not None:
            w += ["--sport", str(self.sport), "--dport", str(self.dport)]
        if self.icmp:
            w += ["--icmp-type", self.icmp]
        if self.flags:
            w += ["--tcp-flags", self.flags]
        if self.local:
            w += ["--mark", str(self.mark), "--uid", str(self.uid or 0)]
        elif self.mark:
            w += ["--mark", str(self.mark)]
        w += ["--ttl", str(self.ttl), "--length", str(self.length)]
        if self.mac_src:
            w += ["--mac-src", self.mac_src]
        return w


@dataclass
class _IpSet:
    name: str
    kind: str  # hash:ip hash:net hash:ip,port bitmap:port
    members: list[str] = field(default_factory=list)

    @property
    def dims(self) -> int:
        return 2 if self.kind == "hash:ip,port" else 1

    def render(self) -> str:
        head = (f"create {self.name} bitmap:port range 0-65535" if self.kind == "bitmap:port"
                else f"create {self.name} {self.kind} family inet hashsize 1024 maxelem 65536")
        return head + "\n" + "".join(f"add {self.name} {m}\n" for m in self.members)


@dataclass
class _Chain:
    table: str
    name: str
    hooks: frozenset[str]  # built-in chains it may be reached from
    builtin: bool
    order: int
    rules: list[str] = field(default_factory=list)


def _weighted(rng: random.Random, items: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def _mac(rng: random.Random, last: str) -> str:
    return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3)) + f":{last}"


class _Gen:
    """One scenario under construction; every random choice goes through ``self.rng``."""

    def __init__(self, seed: int, index: int) -> None:
        self.seed, self.index = seed, index
        self.rng = random.Random(f"pktpath-verify:{seed}:{index}")
        self.ifaces: list[Iface] = []
        self.nets: dict[str, ipaddress.IPv4Network] = {}  # iface -> its first subnet
        self.lo_addrs: list[str] = []
        self.routes: list[str] = []
        self.rules: list[str] = []
        self.tables_used: list[str] = []
        self.sets: list[_IpSet] = []
        self.marks: list[int] = list(MARKS)

    # ------------------------------------------------------------ addresses
    def p(self, odds: float) -> bool:
        return self.rng.random() < odds

    def _subnet(self, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
        while True:
            kind = self.rng.random()
            if kind < 0.45:
                base = f"10.{self.rng.randrange(1, 255)}.{self.rng.randrange(256)}.0"
            elif kind < 0.7:
                base = f"172.{self.rng.randrange(16, 20)}.{self.rng.randrange(256)}.0"
            else:
                base = f"192.168.{self.rng.randrange(1, 255)}.0"
            plen = _weighted(self.rng, [(24, 80), (20, 8), (28, 6), (30, 6)])
            net = ipaddress.IPv4Network(f"{base}/{plen}", strict=False)
            remote = [ipaddress.IPv4Network(n) for n in REMOTE_NETS]
            if not any(net.overlaps(t) for t in taken + remote):
                return net

    def host_in(self, net: ipaddress.IPv4Network, avoid: Sequence[str] = ()) -> str:
        hosts = net.num_addresses - 2
        for _ in range(50):
            a = str(net.network_address + self.rng.randrange(1, hosts + 1))
            if a not in avoid:
                return a
        return str(net.network_address + 1)

    def local_addrs(self) -> list[str]:
        return [a.split("/")[0] for i in self.ifaces for a in i.addrs] + [a.split("/")[0] for a in self.lo_addrs]

    def iface_of(self, addr: str) -> Iface | None:
        ip = ipaddress.ip_address(addr)
        for i in self.ifaces:
            if any(ip in ipaddress.ip_interface(a).network for a in i.addrs):
                return i
        return None

    def remote_host(self) -> str:
        net = ipaddress.ip_network(self.rng.choice(REMOTE_NETS))
        return str(net.network_address + self.rng.randrange(1, min(net.num_addresses - 1, 65000)))

    def build_ifaces(self) -> None:
        n = _weighted(self.rng, [(2, 45), (3, 40), (4, 15)])
        taken: list[ipaddress.IPv4Network] = []
        for k in range(1, n + 1):
            net = self._subnet(taken)
            taken.append(net)
            first = str(net.network_address + 1) if self.p(0.6) else self.host_in(net)
            addrs = [f"{first}/{net.prefixlen}"]
            if self.p(0.2) and net.num_addresses > 8:  # secondary: a second address in the same subnet
                addrs.append(f"{self.host_in(net, [first])}/{net.prefixlen}")
            if self.p(0.15):  # another primary, in another subnet
                extra = self._subnet(taken)
                taken.append(extra)
                addrs.append(f"{extra.network_address + 1}/{extra.prefixlen}")
            name = f"{IFPREFIX}{k}"
            self.ifaces.append(Iface(name, _mac(self.rng, f"{k:02x}:00"), _mac(self.rng, f"{k:02x}:01"), addrs))
            self.nets[name] = net
        if self.p(0.35):
            self.lo_addrs.append(f"10.255.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}/32")

    def gateway(self, iface: Iface) -> str:
        return self.host_in(self.nets[iface.name], [a.split("/")[0] for a in iface.addrs])

    # ------------------------------------------------------------ routing
    def build_routes(self) -> None:
        seen: set[tuple[str, str]] = set()

        def add(dst: str, text: str, table: str = "main") -> None:
            if (dst, table) not in seen:
                seen.add((dst, table))
                self.routes.append(text + ("" if table == "main" else f" table {table}"))

        if self.p(0.75):
            i = self.rng.choice(self.ifaces)
            add("default", f"default via {self.gateway(i)} dev {i.name}")
        for _ in range(self.rng.randrange(0, 5)):
            dst = self.rng.choice(REMOTE_NETS)
            i = self.rng.choice(self.ifaces)
            form = _weighted(self.rng, [("via", 50), ("dev", 15), ("unreachable", 12), ("blackhole", 12),
                                        ("prohibit", 11)])
            if form == "via":
                src = f" src {self.rng.choice(self.local_addrs())}" if self.p(0.3) else ""
                add(dst, f"{dst} via {self.gateway(i)} dev {i.name}{src}")
            elif form == "dev":
                add(dst, f"{dst} dev {i.name}")
            else:
                add(dst, f"{form} {dst}")
        for table in self.rng.sample(EXTRA_TABLES, self.rng.randrange(0, 3)):
            self.tables_used.append(table)
            for _ in range(self.rng.randrange(1, 4)):
                i = self.rng.choice(self.ifaces)
                dst = "default" if self.p(0.4) else self.rng.choice(REMOTE_NETS)
                form = _weighted(self.rng, [("via", 50), ("unreachable", 12), ("blackhole", 10), ("prohibit", 10),
                                            ("throw", 18)])
                if form == "via":
                    add(dst, f"{dst} via {self.gateway(i)} dev {i.name}", table)
                else:
                    add(dst, f"{form} {dst}", table)

    def build_rules(self, pkt: _Packet) -> None:
        prefs = self.rng.sample(range(1000, 32000), 4)
        for pref in prefs[: _weighted(self.rng, [(0, 35), (1, 35), (2, 20), (3, 10)])]:
            sel: list[str] = []
            for kind in self.rng.sample(["from", "to", "fwmark", "iif"], _weighted(self.rng, [(1, 75), (2, 25)])):
                if kind == "from":
                    base = pkt.src or self.rng.choice(self.local_addrs())
                    sel.append(f"from {self.prefix_around(base)}")
                elif kind == "to":
                    sel.append(f"to {self.prefix_around(pkt.dst)}")
                elif kind == "fwmark":
                    mark = self.rng.choice(self.marks)
                    sel.append(f"fwmark {mark:#x}" + (f"/{self.rng.choice(MASKS):#x}" if self.p(0.4) else ""))
                else:
                    dev = pkt.iif if (pkt.iif and self.p(0.6)) else ("lo" if self.p(0.3) else
                                                                      self.rng.choice(self.ifaces).name)
                    sel.append(f"iif {dev}")
            tables = self.tables_used or ["main"]
            action = _weighted(self.rng, [(f"lookup {self.rng.choice(tables)}", 70), ("blackhole", 10),
                                          ("unreachable", 10), ("prohibit", 10)])
            self.rules.append(f"{' '.join(sel)} {action} pref {pref}")

    def prefix_around(self, addr: str) -> str:
        plen = _weighted(self.rng, [(32, 35), (24, 35), (16, 20), (8, 10)])
        return str(ipaddress.ip_network(f"{addr}/{plen}", strict=False))

    def build_sysctl(self) -> dict[str, str]:
        fwd = "1" if self.p(0.8) else "0"
        out = {"net.ipv4.ip_forward": fwd}
        for i in self.ifaces:
            if self.p(0.12):
                out[f"net.ipv4.conf.{i.name}.forwarding"] = "0" if fwd == "1" else "1"
        return out

    # ------------------------------------------------------------ the packet
    def build_packet(self) -> _Packet:
        rng = self.rng
        local = self.p(0.35)
        proto = _weighted(rng, [("tcp", 45), ("udp", 35), ("icmp", 20)])
        sport = dport = None
        if proto in ("tcp", "udp"):
            sport = rng.choice(PORTS) if self.p(0.3) else rng.randrange(1024, 65536)
            dport = rng.choice(PORTS) if self.p(0.7) else rng.randrange(1, 65536)
        flags = _weighted(rng, TCP_FLAGS) if proto == "tcp" else None
        icmp = _weighted(rng, [("8/0", 80), ("0/0", 12), ("3/3", 4), ("11/0", 4)]) if proto == "icmp" else None
        minimum = 20 + {"tcp": 20, "udp": 8, "icmp": 8}[proto]
        length = minimum if self.p(0.4) else rng.choice([n for n in LENGTHS if n >= minimum])
        ttl = _weighted(rng, [(64, 60), (128, 15), (255, 10), (rng.choice(TTLS), 15)])
        locals_ = self.local_addrs()
        if local:
            src = None if self.p(0.35) else rng.choice(locals_)  # a process can only send from its own
            other = rng.choice(self.ifaces)
            dst = _weighted(rng, [(self.remote_host(), 35), (self.gateway(other), 30), (rng.choice(locals_), 25),
                                  ("127.0.0.1", 5), (self.host_in(self.nets[other.name]), 5),
                                  (str(self.nets[other.name].broadcast_address), 4)])
            mark = 0 if self.p(0.6) else rng.choice(self.marks)
            uid = 0 if self.p(0.8) else 1000
            return _Packet(True, None, src, dst, proto, sport, dport, icmp, flags, mark, uid, ttl, length, None)
        iif = rng.choice(self.ifaces)
        inet = self.nets[iif.name]
        others = [i for i in self.ifaces if i is not iif]
        other = rng.choice(others)
        own = [a.split("/")[0] for a in iif.addrs]
        src = _weighted(rng, [(self.host_in(inet, own), 55), (self.remote_host(), 30),
                              (self.host_in(self.nets[other.name]), 10), (rng.choice(locals_), 5)])
        dst = _weighted(rng, [(rng.choice(own), 20), (rng.choice(locals_), 15),
                              (self.host_in(self.nets[other.name]), 25), (self.remote_host(), 30),
                              (str(inet.broadcast_address), 5), (self.host_in(inet, own), 5)])
        mac = iif.peer_mac if self.p(0.85) else _mac(rng, "77:77")
        mark = rng.choice(self.marks) if self.p(0.08) else 0
        return _Packet(False, iif.name, src, dst, proto, sport, dport, icmp, flags, mark, None, ttl, length, mac)

    # ------------------------------------------------------------ ipsets
    def build_sets(self, pkt: _Packet) -> None:
        if not self.p(0.5):
            return
        addrs = [a for a in (pkt.src, pkt.dst) if a] + self.local_addrs()[:1]
        for k in range(1, self.rng.randrange(1, 4) + 1):
            kind = _weighted(self.rng, [("hash:ip", 35), ("hash:net", 25), ("hash:ip,port", 25), ("bitmap:port", 15)])
            s = _IpSet(f"{SET_PREFIX}{k}", kind)
            for _ in range(self.rng.randrange(1, 4)):
                biased = self.p(0.7)
                if kind == "hash:ip":
                    s.members.append(self.rng.choice(addrs) if biased else self.remote_host())
                elif kind == "hash:net":
                    base = self.rng.choice(addrs) if biased else self.remote_host()
                    s.members.append(self.prefix_around(base) if self.p(0.7) else self.rng.choice(REMOTE_NETS))
                elif kind == "hash:ip,port":
                    proto = pkt.proto if pkt.proto in ("tcp", "udp") and biased else self.rng.choice(["tcp", "udp"])
                    port = (pkt.dport if biased and pkt.dport else self.rng.choice(PORTS))
                    s.members.append(f"{self.rng.choice(addrs) if biased else self.remote_host()},{proto}:{port}")
                else:
                    if self.p(0.3):
                        lo = self.rng.randrange(1, 60000)
                        s.members.append(f"{lo}-{lo + self.rng.randrange(1, 2000)}")
                    else:
                        s.members.append(str(pkt.dport if biased and pkt.dport else self.rng.choice(PORTS)))
            s.members = list(dict.fromkeys(s.members))
            self.sets.append(s)


class _Rules:
    """The iptables ruleset for one packet; every rule respects TARGETS/HOOK_LIMITED."""

    def __init__(self, g: _Gen, pkt: _Packet) -> None:
        self.g, self.rng, self.pkt = g, g.rng, pkt
        self.chains: dict[str, list[_Chain]] = {}
        locals_ = g.local_addrs()
        self.addrs = [a for a in (pkt.src, pkt.dst) if a] + locals_
        self.nat_dsts = [self.rng.choice(locals_), g.host_in(g.nets[self.rng.choice(g.ifaces).name]),
                         g.remote_host()]
        self.ifnames = [i.name for i in g.ifaces]

    def p(self, odds: float) -> bool:
        return self.rng.random() < odds

    # ------------------------------------------------------------ values from the packet
    def addr(self) -> str:
        return self.rng.choice(self.addrs) if self.p(0.85) else self.g.remote_host()

    def addr_spec(self) -> str:
        a = self.addr()
        return str(_weighted(self.rng, [(f"{a}/32", 55), (self.g.prefix_around(a), 45)]))

    def port(self, which: str) -> int:
        value = self.pkt.sport if which == "sport" else self.pkt.dport
        if value is not None and self.p(0.8):
            return value
        return self.rng.choice(PORTS)

    def port_spec(self, which: str) -> str:
        p = self.port(which)
        if self.p(0.2):
            lo = max(0, p - self.rng.randrange(0, 500))
            return f"{lo}:{min(65535, p + self.rng.randrange(0, 500))}"
        return str(p)

    def mark(self) -> int:
        return int(self.rng.choice([self.pkt.mark, *self.g.marks]))

    def neg(self, odds: float = 0.15) -> str:
        return "! " if self.p(odds) else ""

    # ------------------------------------------------------------ matches
    def iface(self, chain: _Chain, direction: str) -> str | None:
        builtin_ok = {"-i": chain.hooks <= INCOMING, "-o": chain.hooks <= OUTGOING}
        if chain.builtin and not builtin_ok[direction]:
            return None
        if direction == "-i" and self.pkt.iif and self.p(0.5):
            name = self.pkt.iif
        else:
            name = self.rng.choice([*self.ifnames, "lo", f"{IFPREFIX}+", "pkv+"])
        return f"{self.neg(0.1)}{direction} {name}"

    def match(self, chain: _Chain, proto: str | None) -> str | None:
        kinds: list[tuple[str, float]] = [
            ("-s", 14), ("-d", 14), ("-i", 6), ("-o", 6), ("comment", 4), ("addrtype", 7), ("mark", 8),
            ("conntrack", 7), ("state", 4), ("iprange", 5), ("length", 5), ("ttl", 5), ("mac", 4), ("set", 10)]
        if proto in ("tcp", "udp"):
            kinds += [("ports", 14), ("multiport", 6)]
        if proto == "tcp":
            kinds += [("tcpflags", 5)]
        if proto == "icmp":
            kinds += [("icmp", 8)]
        kind = _weighted(self.rng, kinds)
        rng = self.rng
        if kind in ("-s", "-d"):
            return f"{self.neg()}{kind} {self.addr_spec()}"
        if kind in ("-i", "-o"):
            return self.iface(chain, kind)
        if kind == "comment":
            return f"-m comment --comment {rng.choice(COMMENTS)}"
        if kind == "addrtype":
            which = rng.choice(["--src-type", "--dst-type"])
            t = _weighted(rng, [("LOCAL", 45), ("UNICAST", 35), ("BROADCAST", 12), ("MULTICAST", 8)])
            text = f"-m addrtype {self.neg()}{which} {t}"
            limit = rng.choice(["limit-iface-in", "limit-iface-out"])
            if self.p(0.3) and chain.hooks <= HOOK_LIMITED[limit]:
                text += f" --{limit}"
            return text
        if kind == "mark":
            m = self.mark()
            mask = f"/{rng.choice(MASKS):#x}" if self.p(0.3) else ""
            return f"-m mark {self.neg()}--mark {m:#x}{mask}"
        if kind == "conntrack":
            states = rng.sample(["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"],
                                _weighted(rng, [(1, 60), (2, 40)]))
            return f"-m conntrack {self.neg()}--ctstate {','.join(states)}"
        if kind == "state":
            states = rng.sample(["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"],
                                _weighted(rng, [(1, 60), (2, 40)]))
            return f"-m state {self.neg(0.1)}--state {','.join(states)}"
        if kind == "iprange":
            base = int(ipaddress.ip_address(self.addr()))
            lo = max(1, base - rng.randrange(0, 300))
            hi = min(0xFFFFFFFE, base + rng.randrange(0, 300))
            which = rng.choice(["--src-range", "--dst-range"])
            return (f"-m iprange {self.neg()}{which} "
                    f"{ipaddress.ip_address(lo)}-{ipaddress.ip_address(hi)}")
        if kind == "length":
            n = self.pkt.length if self.p(0.6) else rng.choice(LENGTHS)
            spec = str(n) if self.p(0.5) else f"{max(0, n - rng.randrange(0, 100))}:{n + rng.randrange(0, 1000)}"
            return f"-m length {self.neg()}--length {spec}"
        if kind == "ttl":
            t = self.pkt.ttl - (1 if self.p(0.2) else 0)
            op = rng.choice(["--ttl-eq", "--ttl-lt", "--ttl-gt"])
            if op == "--ttl-lt":
                t += rng.randrange(0, 40)
            elif op == "--ttl-gt":
                t -= rng.randrange(0, 40)
            return f"-m ttl {op} {max(0, min(255, t))}"
        if kind == "mac":
            if not chain.hooks <= HOOK_LIMITED["mac"]:
                return None
            mac = self.pkt.mac_src if self.pkt.mac_src and self.p(0.7) else _mac(rng, "01:01")
            return f"-m mac {self.neg()}--mac-source {mac}"
        if kind == "set":
            if not self.g.sets:
                return None
            s = rng.choice(self.g.sets)
            if s.dims == 2:
                flags = rng.choice(["dst,dst", "src,src", "src,dst", "dst,src"])
            else:
                flags = rng.choice(["src", "dst"])
            return f"-m set {self.neg()}--match-set {s.name} {flags}"
        if kind == "ports":
            which = rng.choice(["sport", "dport"])
            return f"{self.neg(0.1)}--{which} {self.port_spec(which)}"
        if kind == "multiport":
            which = rng.choice(["dports", "sports", "ports"])
            ports = [str(self.port("sport" if which == "sports" else "dport")) for _ in range(rng.randrange(1, 4))]
            ports += [str(p) for p in rng.sample(PORTS, 2)]
            if self.p(0.3):
                lo = rng.randrange(1, 60000)
                ports.append(f"{lo}:{lo + rng.randrange(1, 500)}")
            return f"-m multiport {self.neg(0.1)}--{which} {','.join(dict.fromkeys(ports))}"
        if kind == "tcpflags":
            return rng.choice(["--syn", "! --syn", "--tcp-flags SYN,ACK,FIN,RST SYN", "--tcp-flags FIN,URG,PSH NONE",
                               "--tcp-flags SYN,ACK SYN,ACK", "--tcp-flags ACK ACK", "--tcp-flags RST RST"])
        if kind == "icmp":
            t = rng.choice(["echo-request", "echo-reply", "8", "0", "any", "3/3"])
            return f"-m icmp {self.neg(0.1)}--icmp-type {t}"
        return None

    # ------------------------------------------------------------ targets
    def target(self, chain: _Chain, proto: str | None) -> str | None:
        legal: list[tuple[str, float]] = []
        for name, w in TARGET_WEIGHTS.items():
            if name in ("jump", "goto"):
                if self.callees(chain):
                    legal.append((name, w))
                continue
            tables, hooks = TARGETS[name]
            if chain.table in tables and (hooks is None or chain.hooks <= hooks):
                legal.append((name, w * TABLE_TARGET_FACTOR.get((chain.table, name), 1.0)))
        if not chain.builtin:
            legal = [(n, w * (2 if n == "RETURN" else 1)) for n, w in legal]
        name = _weighted(self.rng, legal)
        rng = self.rng
        ported = proto in ("tcp", "udp")
        if name in ("jump", "goto"):
            callee = rng.choice(self.callees(chain))
            return f"{'-j' if name == 'jump' else '-g'} {callee.name}"
        if name in ("ACCEPT", "DROP", "RETURN", "NOTRACK"):
            return f"-j {name}"
        if name == "LOG":
            return f"-j LOG --log-prefix {LOG_PREFIX}"
        if name == "CT":
            return "-j CT --notrack"
        if name == "MARK":
            m, mask = self.mark(), rng.choice(MASKS)
            return "-j MARK " + rng.choice([f"--set-mark {m:#x}", f"--set-mark {m:#x}/{mask:#x}",
                                             f"--set-xmark {m:#x}/{mask:#x}", f"--or-mark {m:#x}",
                                             f"--and-mark {mask:#x}", f"--xor-mark {m:#x}"])
        if name == "CONNMARK":
            m, mask = self.mark(), rng.choice(MASKS)
            maskopt = f" --mask {mask:#x}" if self.p(0.5) else ""
            return "-j CONNMARK " + rng.choice([f"--set-mark {m:#x}/{mask:#x}", f"--set-mark {m:#x}",
                                                 f"--save-mark{maskopt}", f"--restore-mark{maskopt}"])
        if name == "REJECT":
            kinds = ["icmp-port-unreachable", "icmp-host-prohibited", "icmp-net-prohibited", "icmp-admin-prohibited",
                     "icmp-host-unreachable"] + (["tcp-reset"] if proto == "tcp" else [])
            return "-j REJECT" + (f" --reject-with {rng.choice(kinds)}" if self.p(0.6) else "")
        if name == "DNAT":
            addr = rng.choice(self.nat_dsts)
            port = f":{self.port('dport') if self.p(0.3) else rng.choice(PORTS)}" if ported and self.p(0.5) else ""
            if port and self.p(0.2):
                port += f"-{int(port[1:]) + rng.randrange(1, 50)}"
            return f"-j DNAT --to-destination {self.addr_range(addr)}{port}"
        if name == "REDIRECT":
            if ported and self.p(0.6):
                p = rng.choice(PORTS)
                return f"-j REDIRECT --to-ports {p}" + (f"-{p + rng.randrange(1, 20)}" if self.p(0.2) else "")
            return "-j REDIRECT"
        if name == "SNAT":
            addr = rng.choice(self.g.local_addrs()) if self.p(0.8) else self.g.remote_host()
            port = f":{rng.randrange(1024, 65536)}" if ported and self.p(0.3) else ""
            return f"-j SNAT --to-source {self.addr_range(addr)}{port}"
        if name == "MASQUERADE":
            if ported and self.p(0.3):
                lo = rng.randrange(1024, 60000)
                return f"-j MASQUERADE --to-ports {lo}-{lo + rng.randrange(0, 100)}"
            return "-j MASQUERADE"
        return None

    def addr_range(self, addr: str) -> str:
        """Mostly one address; sometimes a range (the kernel hashes the tuple to pick one)."""
        if not self.p(0.15):
            return addr
        last = ipaddress.IPv4Address(addr) + self.rng.randrange(1, 6)
        return f"{addr}-{last}"

    def callees(self, chain: _Chain) -> list[_Chain]:
        return [c for c in self.chains[chain.table]
                if not c.builtin and c.order > chain.order and chain.hooks <= c.hooks]

    # ------------------------------------------------------------ rules and tables
    def rule(self, chain: _Chain) -> str:
        proto: str | None = None
        head: list[str] = []
        if self.p(0.55):
            proto = self.pkt.proto if self.p(0.75) else self.rng.choice(["tcp", "udp", "icmp"])
            head.append(f"-p {proto}")
        elif self.p(0.05):
            head.append("! -p icmp")
        n = _weighted(self.rng, [(0, 15), (1, 40), (2, 30), (3, 15)])
        body: list[str] = []
        used: set[str] = set()
        for _ in range(n):
            m = self.match(chain, proto)
            key = _match_key(m) if m else None
            if m and key not in used:
                used.add(str(key))
                body.append(m)
        # Options of the implicit -p match first: after a -m module, iptables would read
        # --dport as that module's option (multiport: an abbreviation of --dports).
        body.sort(key=lambda m: 0 if m.lstrip("! ").startswith(("--sport", "--dport", "--syn", "--tcp-flags"))
                  else 1)
        target = self.target(chain, proto)
        if target is None:
            target = "-j ACCEPT"
        if ("tcp-reset" in target and proto != "tcp") or (":" in target.split()[-1] and "-to-" in target
                                                          and proto not in ("tcp", "udp")):
            target = "-j ACCEPT"
        if "--to-ports" in target and proto not in ("tcp", "udp"):
            target = target.split(" --to-ports")[0]
        return " ".join([f"-A {chain.name}", *head, *body, target])

    def table(self, name: str) -> str:
        builtins = [_Chain(name, c, frozenset({c}), True, 0) for c in BUILTINS[name]]
        users: list[_Chain] = []
        for k, cname in enumerate(self.rng.sample(CHAIN_NAMES, _weighted(self.rng, [(0, 30), (1, 35), (2, 25),
                                                                                    (3, 10)]))):
            hooks = self.hookset(name)
            users.append(_Chain(name, cname, hooks, False, k + 1))
        self.chains[name] = builtins + users
        for chain in builtins + users:
            count = (_weighted(self.rng, [(0, 25), (1, 25), (2, 25), (3, 15), (4, 10)]) if chain.builtin
                     else self.rng.randrange(1, 5))
            chain.rules = [self.rule(chain) for _ in range(count)]
        lines = [f"*{name}"]
        for c in builtins:
            policy = "DROP" if name == "filter" and self.p(0.2) else "ACCEPT"
            lines.append(f":{c.name} {policy} [0:0]")
        lines += [f":{c.name} - [0:0]" for c in users]
        lines += [r for c in builtins + users for r in c.rules]
        return "\n".join([*lines, "COMMIT"]) + "\n"

    def hookset(self, table: str) -> frozenset[str]:
        """Built-in chains a user chain may be called from (decides its legal targets)."""
        hooks = BUILTINS[table]
        if table == "nat" and self.p(0.8):
            return frozenset(self.rng.choice([("PREROUTING", "OUTPUT"), ("POSTROUTING",), ("POSTROUTING", "INPUT"),
                                              ("PREROUTING",), ("OUTPUT",)]))
        if self.p(0.5):
            return frozenset(hooks)
        return frozenset(self.rng.sample(hooks, self.rng.randrange(1, len(hooks) + 1)))

    def render(self) -> str:
        tables = [t for t in ("raw", "mangle", "nat", "filter") if self.p(TABLE_ODDS[t])]
        return "".join(self.table(t) for t in tables or ["filter"])


def _match_key(m: str) -> str:
    """What may appear only once per rule: -s, -d, -i, -o, --sport, --dport, the tcp flags,
    and each -m module (kept to one use per rule for simplicity)."""
    words = m.replace("! ", "").split()
    if words[0] == "-m":
        return words[1]
    if words[0] in ("--syn", "--tcp-flags"):
        return "tcpflags"
    return words[0]


def generate(seed: int, index: int) -> Scenario:
    """Scenario ``index`` of ``seed`` (deterministic)."""
    g = _Gen(seed, index)
    g.build_ifaces()
    g.build_routes()
    pkt = g.build_packet()
    g.build_rules(pkt)
    sysctl = g.build_sysctl()
    g.build_sets(pkt)
    iptables = _Rules(g, pkt).render()
    return Scenario(seed, index, g.ifaces, g.lo_addrs, sysctl, g.routes, g.rules,
                    "".join(s.render() for s in g.sets), iptables, pkt.words())


Generator = Callable[[int, int], Scenario]
