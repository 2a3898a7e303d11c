"""Routing setups built in network namespaces and asked ``ip route get`` (kernel cross-checks).

A ``Setup`` is plain data: veth interfaces (the far end of each alone in a peer namespace,
up or down, so the host end has carrier or not), their addresses, addresses on ``lo``,
sysctls, routes of every type in several tables, ip rules, and ``pktpath route`` queries.
``generate(seed)`` makes a random one, the same for the same seed.  ``run_setup()`` builds
it in fresh namespaces named ``pprt-<pid>-<n>`` (never touching anything it did not
create, deleting everything again in ``finally``), collects it as a snapshot directory
(``ip -j addr / -d link / route show table all / rule show`` and ``sysctl -a`` filtered to
``net.ipv4.``), and asks the kernel every query with ``ip -j route get``.

Each answer is shaped like a shared kernel case's ``queries.json`` entry (``args``, ``ip``,
``expected``, ``alternatives``) and ``judge()`` compares a ``pktpath route --format json``
output with it exactly as shared/kernel-cases/check/compare_routes.py does
(shared/spec/route-json.md).  Two things the kernel's answer alone does not say are asked
it separately:

* multipath: the kernel's hash picks one live hop; every live hop is acceptable.  The
  matched route (``ip route get fibmatch``) is replaced by each live hop alone in turn and
  the query asked again (then the route is put back);
* ``Invalid argument`` is EINVAL from a blackhole or from the arguments: at the end every
  blackhole route and rule becomes ``prohibit`` and the query is asked again; an answer
  that turns into ``Permission denied`` was a blackhole.

One thing a snapshot cannot show is history: the kernel decides whether a route's gateway is
used (its next hop's scope) once, when the route is added, from the routes and rules there
then.  So build() adds routes without a gateway first, then the ip rules, then routes with one:
what the kernel saw then is what the snapshot shows.

Root only (network namespaces).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import json
import os
import random
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pktpath.sandbox.netns import trap_sigterm

PREFIX = f"pprt-{os.getpid()}-"
NETNS_DIR = Path("/run/netns")
PEER_IF = "peer0"
LINK_WAIT = 5.0
# A new namespace copies conf/all and conf/default from the initial one
# (net.core.devconf_inherit_init_net=0): start from the kernel defaults instead.
KERNEL_DEFAULTS = [(f"net.ipv4.conf.{scope}.{key}", "0") for scope in ("all", "default")
                   for key in ("rp_filter", "accept_local", "route_localnet", "src_valid_mark", "bc_forwarding",
                               "ignore_routes_with_linkdown")]
# ``pktpath route`` option -> ``ip route get`` word
IP_WORDS = {"--src": "from", "--iif": "iif", "--oif": "oif", "--mark": "mark", "--uid": "uid",
            "--ipproto": "ipproto", "--sport": "sport", "--dport": "dport", "--tos": "tos"}
# ``ip route get`` error text -> route-json.md error name (EINVAL is settled by the blackhole probe)
ERROR_NAMES = {"Network is unreachable": "no-route", "No route to host": "unreachable",
               "Permission denied": "prohibited", "Invalid argument": "invalid-argument",
               "Network is down": "network-down", "No such device": "no-device"}
# compare_routes.py: compared keys, and the value an absent key stands for
KEYS = ("type", "dst", "from", "iif", "gateway", "dev", "prefsrc", "table", "flags")
DEFAULTS: dict[str, Any] = {"type": "unicast", "flags": []}

Json = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# The setup


@dataclass
class Iface:
    """A veth whose peer end is alone in its own namespace."""

    name: str
    addrs: list[str] = field(default_factory=list)  # ``ip addr add`` words before ``dev``
    carrier: bool = True  # the peer end is up
    admin_up: bool = True
    group: int = 0
    mac: str = ""


@dataclass
class Setup:
    """One host: what to build, in order, and the ``pktpath route`` queries to ask."""

    name: str
    ifaces: list[Iface]
    routes: list[str] = field(default_factory=list)  # ``ip route add`` arguments (see build() for the order)
    rules: list[str] = field(default_factory=list)  # ``ip rule add`` arguments
    rules_del: list[str] = field(default_factory=list)  # ``ip rule del`` arguments, after the adds
    sysctls: list[tuple[str, str]] = field(default_factory=list)  # key, value (net.ipv4.*)
    lo_addrs: list[str] = field(default_factory=list)
    queries: list[list[str]] = field(default_factory=list)  # ``pktpath route`` arguments
    ipv6: bool = True  # False: IPv6 off (the sandbox, which rebuilds a snapshot, has no IPv6)

    def script(self) -> str:
        """The setup as shell commands (for failure messages: paste into a namespace)."""
        lines = [f"# setup {self.name}"]
        for key, value in self.sysctls:
            lines.append(f"sysctl -w {key}={value}")
        for i in self.ifaces:
            lines.append(f"ip link add {i.name} type veth peer name {PEER_IF} netns PEER-{i.name}"
                         + ("" if i.carrier else "   # peer end left down: no carrier"))
            lines += [f"ip addr add {a} dev {i.name}" for a in i.addrs]
        lines += [f"ip addr add {a} dev lo" for a in self.lo_addrs]
        lines += [f"ip link set {i.name} group {i.group}" for i in self.ifaces if i.group]
        lines += [f"ip route add {r}" for r in self.routes if not _has_gateway(r)]
        lines += [f"ip rule add {r}" for r in self.rules]
        lines += [f"ip rule del {r}" for r in self.rules_del]
        lines += [f"ip route add {r}" for r in self.routes if _has_gateway(r)]
        lines += [f"ip link set {i.name} down" for i in self.ifaces if not i.admin_up]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def ip_words(args: Sequence[str]) -> list[str]:
    """``pktpath route`` arguments -> ``ip route get`` arguments."""
    pairs = dict(zip(args[0::2], args[1::2], strict=True))
    words = [pairs["--dst"]]
    for opt, value in pairs.items():
        if opt != "--dst":
            words += [IP_WORDS[opt], value]
    return words


# ---------------------------------------------------------------------------------------------
# Random setups


_DSTS = ["default", "10.200.0.0/16", "10.200.7.0/24", "10.200.7.64/26", "198.18.0.0/15", "198.18.4.0/22",
         "203.0.113.0/24", "203.0.113.128/25", "100.64.0.0/10", "8.8.8.0/24", "192.0.2.0/24", "192.0.2.77/32"]
_TABLES = ["", "", "", "", " table 100", " table 100", " table 200", " table 253", " table 1000"]
_WANTED_TABLES = ["100", "200", "253", "main", "1000", "777", "local", "default"]


def _pick_net(r: random.Random, plen: int) -> ipaddress.IPv4Network:
    base = r.choice([f"10.{r.randrange(256)}.{r.randrange(256)}.0", f"192.168.{r.randrange(256)}.0",
                     f"172.{r.randrange(16, 32)}.{r.randrange(256)}.0", "10.200.7.0", "198.18.4.0"])
    return ipaddress.IPv4Network(f"{base}/{plen}", strict=False)


def _host_in(r: random.Random, net: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    if net.prefixlen >= 31:
        return net[r.randrange(net.num_addresses)]
    return net[r.randrange(1, net.num_addresses - 1)]


class _Gen:
    """generate()'s state: the random source and what earlier choices made available."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.ifaces: list[Iface] = []
        self.subnets: list[tuple[ipaddress.IPv4Network, str, ipaddress.IPv4Address]] = []
        self.local: list[ipaddress.IPv4Address] = []
        self.route_dsts: list[str] = []

    @property
    def names(self) -> list[str]:
        return [i.name for i in self.ifaces]

    def add_ifaces(self) -> None:
        r = self.r
        for n in range(r.randint(2, 4)):
            iface = Iface(f"rv{n}", carrier=r.random() > 0.12, admin_up=r.random() > 0.1,
                          group=5 if r.random() < 0.25 else 0, mac=f"02:72:76:00:{n:02x}:01")
            for _ in range(r.choice([0, 1, 1, 1, 2, 2, 3])):
                self.add_addr(iface)
            self.ifaces.append(iface)

    def add_addr(self, iface: Iface) -> None:
        r = self.r
        plen = r.choice([24, 24, 24, 20, 26, 29, 30, 31, 32])
        net = _pick_net(r, plen)
        host = _host_in(r, net)
        if host in self.local:  # one address on two devices: which one owns it depends on history
            return
        words = f"{host}/{plen}"
        if r.random() < 0.08 and plen < 30:
            peer = net[int(host) - int(net.network_address) + 1] if host != net[-2] else net[1]
            words = f"{host} peer {peer}/{plen}"
        extra = r.choice(["", "", "", "", "", " noprefixroute", " scope link", " scope host", " metric 77"])
        iface.addrs.append(words + extra)
        self.subnets.append((net, iface.name, host))
        self.local.append(host)
        if r.random() < 0.35 and plen <= 29:  # a second address in the same subnet: secondary
            second = _host_in(r, net)
            if second not in self.local:  # the kernel wants the primary's scope
                scope = extra if extra.startswith(" scope") else ""
                iface.addrs.append(f"{second}/{plen}{scope}")
                self.local.append(second)

    def gateway(self) -> str:
        r = self.r
        cands = [s for s in self.subnets if s[0].prefixlen < 31]
        if cands and r.random() < 0.75:
            net, dev, _ = r.choice(cands)
            return f"via {_host_in(r, net)} dev {dev}"
        return f"via 172.31.{r.randrange(256)}.{r.randrange(1, 255)} dev {r.choice(self.names)} onlink"

    def route(self) -> str:
        r = self.r
        dsts = _DSTS + [str(s[0]) for s in self.subnets[:3]]
        d = r.choice(dsts)
        self.route_dsts.append(d)
        table = r.choice(_TABLES)
        extra = r.choice(["", "", "", " metric 10", " metric 50", " tos 0x10", " tos 0x08", " proto static"])
        kind = r.random()
        if kind < 0.36:
            src = f" src {r.choice(self.local)}" if self.local and r.random() < 0.25 else ""
            return f"{d} {self.gateway()}{extra}{src}{table}"
        if kind < 0.46:
            src = f" src {r.choice(self.local)}" if self.local and r.random() < 0.25 else ""
            scope = r.choice(["", "", " scope link", " scope host"])
            return f"{d} dev {r.choice(self.names)}{extra}{scope}{src}{table}"
        if kind < 0.62:
            return f"{r.choice(['blackhole', 'unreachable', 'prohibit', 'throw'])} {d}{extra}{table}"
        if kind < 0.78:
            hops = " ".join(f"nexthop {self.gateway()}{r.choice(['', '', ' weight 2', ' weight 3'])}"
                            for _ in range(r.randint(2, 3)))
            return f"{d}{extra}{table} {hops}"
        if kind < 0.86:
            d = d if d != "default" else "10.250.0.0/24"
            return f"local {d} dev {r.choice([*self.names, 'lo'])}{table or r.choice(['', ' table local'])}"
        if kind < 0.93:
            d = d if d != "default" else "10.251.0.0/24"
            return f"broadcast {d} dev {r.choice(self.names)}{table}"
        if kind < 0.97:
            return f"multicast {r.choice([d, '239.0.0.0/8', '224.0.0.0/4'])} dev {r.choice(self.names)}{table}"
        return f"anycast {d if d != 'default' else '10.252.0.0/24'} dev {r.choice(self.names)}{table}"

    def selector(self, opt: str) -> str:
        r = self.r
        nets = [str(s[0]) for s in self.subnets] + ["10.0.0.0/8", "172.16.0.0/12", "192.0.2.0/24"]
        addrs = [str(a) for a in self.local]
        values: dict[str, Callable[[], str]] = {
            "not": lambda: "not",
            "from": lambda: "from " + r.choice(nets + addrs),
            "to": lambda: "to " + r.choice(_DSTS[1:] + nets),
            "tos": lambda: "tos " + r.choice(["0x10", "0x08", "0x04", "0x18"]),
            "fwmark": lambda: "fwmark " + r.choice(["0x1", "0x100", "0x4000/0xff00", "0x0/0x1", "0x10000"]),
            "iif": lambda: "iif " + r.choice([*self.names, "lo", "lo", "pgone"]),
            "oif": lambda: "oif " + r.choice([*self.names, "pgone"]),
            "uidrange": lambda: "uidrange " + r.choice(["0-0", "0-1", "1000-1000", "100-1099"]),
            "ipproto": lambda: "ipproto " + r.choice(["tcp", "udp", "icmp"]),
            "sport": lambda: "sport " + r.choice(["53", "80", "1000-2000"]),
            "dport": lambda: "dport " + r.choice(["53", "443", "1000-2000"]),
        }
        return values[opt]()

    def rules(self) -> tuple[list[str], list[str]]:
        r = self.r
        if r.random() < 0.15:
            return [], []
        prefs = sorted(r.sample(range(100, 32000, 10), r.randint(1, 6)))
        rules = []
        for p in prefs:
            sel = [self.selector(o) for o in ("not", "from", "to", "tos", "fwmark", "iif", "oif", "uidrange",
                                              "ipproto", "sport", "dport") if r.random() < 0.14]
            if sel == ["not"] and r.random() < 0.7:
                sel = []
            a = r.random()
            if a < 0.55:
                action = "lookup " + r.choice(_WANTED_TABLES)
                if r.random() < 0.25:
                    action += f" suppress_prefixlength {r.choice([0, 8, 16, 24])}"
                if r.random() < 0.15:
                    action += f" suppress_ifgroup {r.choice([0, 5])}"
            elif a < 0.66:
                action = f"goto {r.choice([q for q in prefs if q > p] + [32766, 32767])}"
            elif a < 0.72:
                action = "nop"
            else:
                action = r.choice(["blackhole", "unreachable", "prohibit"])
            rules.append(" ".join([*sel, action, "pref", str(p)]))
        deleted = []
        if r.random() < 0.15:  # the local rule moved after the others
            rules.append("lookup local pref 32000")
            deleted.append("pref 0 lookup local")
        if r.random() < 0.1:
            deleted.append(r.choice(["pref 32766 lookup main", "pref 32767 lookup default"]))
        return rules, deleted

    def sysctls(self) -> list[tuple[str, str]]:
        r = self.r
        out = [("net.ipv4.ip_forward", r.choice(["0", "1", "1", "1", "1"]))]
        for key, vals in [("forwarding", "01"), ("rp_filter", "012"), ("accept_local", "01"),
                          ("src_valid_mark", "01"), ("route_localnet", "01"), ("send_redirects", "01"),
                          ("ignore_routes_with_linkdown", "01"), ("bc_forwarding", "01")]:
            for dev in ["all", "default", *self.names]:
                if r.random() < (0.2 if dev == "all" else 0.1):
                    out.append((f"net.ipv4.conf.{dev}.{key}", r.choice(vals)))
        return out

    def address(self) -> str:
        r = self.r
        c = r.random()
        if c < 0.2 and self.local:
            return str(r.choice(self.local))
        if c < 0.35 and self.subnets:
            net = r.choice(self.subnets)[0]
            return str(net[r.randrange(net.num_addresses)])
        if c < 0.7:  # in a route's destination, of this setup or not
            d = r.choice(self.route_dsts if self.route_dsts and r.random() < 0.6 else _DSTS)
            net = ipaddress.IPv4Network("0.0.0.0/0" if d == "default" else d)
            return str(net[r.randrange(min(net.num_addresses, 1 << 30))])
        if c < 0.8:
            return r.choice(["0.0.0.0", "224.0.0.1", "224.0.0.1", "224.0.0.251", "239.1.2.3", "255.255.255.255",
                             "127.0.0.1", "127.3.4.5", "0.1.2.3", "10.250.0.7", "10.251.0.255", "10.252.0.9"])
        return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}"

    def query(self) -> list[str]:
        r = self.r
        args = ["--dst", self.address()]
        inp = r.random() < 0.4
        iif = r.choice([*self.names, *self.names, "lo"])
        if inp and r.random() < 0.9:
            near = [s[0] for s in self.subnets if s[1] == iif]
            c = r.random()
            if c < 0.35 and near:  # a neighbour on the arrival device's subnet
                net = r.choice(near)
                src = str(net[r.randrange(net.num_addresses)])
            elif c < 0.6:  # somewhere far away
                src = f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}"
            else:
                src = self.address()
            args += ["--src", src]
        elif not inp and r.random() < 0.35:
            src = str(r.choice(self.local)) if self.local and r.random() < 0.7 else self.address()
            args += ["--src", src]
        if inp:
            args += ["--iif", iif]
        elif r.random() < 0.2:
            args += ["--oif", r.choice([*self.names, "lo"])]
        for opt, vals in [("--mark", ["0x1", "0x100", "0x4000", "0x10000"]), ("--uid", ["0", "1", "1000", "65534"]),
                          ("--tos", ["0x10", "0x08", "0x18", "0x04"]), ("--ipproto", ["tcp", "udp", "icmp"]),
                          ("--sport", ["53", "80", "1500"]), ("--dport", ["53", "443", "1500"])]:
            if r.random() < 0.2:
                args += [opt, r.choice(vals)]
        return args


def generate(seed: int, queries: int = 20) -> Setup:
    """A random routing setup (deterministic per seed) with ``queries`` queries."""
    g = _Gen(seed)
    g.add_ifaces()
    lo_addrs = [f"10.255.{g.r.randrange(256)}.{g.r.randrange(1, 255)}/32"] if g.r.random() < 0.3 else []
    lo_addrs = [a for a in lo_addrs if ipaddress.IPv4Address(a.split("/")[0]) not in g.local]
    g.local += [ipaddress.IPv4Address(a.split("/")[0]) for a in lo_addrs]
    sysctls = g.sysctls()
    routes = [g.route() for _ in range(g.r.randint(3, 11))]
    if g.r.random() < 0.6:
        routes.insert(0, f"default {g.gateway()}")
    rules, rules_del = g.rules()
    return Setup(name=f"seed-{seed}", ifaces=g.ifaces, routes=routes, rules=rules, rules_del=rules_del,
                 sysctls=sysctls, lo_addrs=lo_addrs, queries=[g.query() for _ in range(queries)])


# ---------------------------------------------------------------------------------------------
# Namespaces (ours only)


_live: set[str] = set()


def _run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
         timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _delete_ns(name: str) -> None:
    """Delete a namespace this process created (only ever called with such a name)."""
    _live.discard(name)
    if (NETNS_DIR / name).exists():
        _run(["ip", "netns", "del", name], check=False)


@atexit.register
def _cleanup_at_exit() -> None:
    for name in sorted(_live):
        _delete_ns(name)


_counter = itertools.count()


class Lab:
    """Namespaces ``pprt-<pid>-<n>[-p<i>]`` this process creates; all deleted on exit.

    ``ip netns add`` refuses an existing name, so everything in ``self.created`` is ours."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.ns = ""
        self._trapped = False

    def __enter__(self) -> Lab:
        self._trapped = trap_sigterm(True)  # SIGTERM (a CI timeout) unwinds through close()
        try:
            while True:
                name = f"{PREFIX}{next(_counter)}"
                if not (NETNS_DIR / name).exists() and not any(
                        p.name.startswith(name + "-") for p in NETNS_DIR.glob(name + "-*")):
                    break
            self.ns = self.create(name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, name: str) -> str:
        if not name.startswith(PREFIX):
            raise RuntimeError(f"refusing to create namespace {name!r} outside {PREFIX}*")
        _run(["ip", "netns", "add", name])  # fails if the name exists: then it is not ours
        self.created.append(name)
        _live.add(name)
        return name

    def close(self) -> None:
        while self.created:
            _delete_ns(self.created.pop())
        if self._trapped:
            self._trapped = False
            trap_sigterm(False)

    def ip(self, *args: str, ns: str | None = None, input: str | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "-n", ns or self.ns, *args], input=input, check=check)

    def batch(self, lines: Sequence[str], ns: str | None = None) -> list[str]:
        """``ip -batch - -force``; returns the lines the kernel (or ip) refused, with why."""
        if not lines:
            return []
        proc = self.ip("-batch", "-", "-force", ns=ns, input="".join(line + "\n" for line in lines), check=False)
        refused = []
        msg: list[str] = []
        for text in proc.stderr.splitlines():
            m = re.match(r"Command failed -:(\d+)", text)
            if m:
                refused.append(f"{lines[int(m.group(1)) - 1]}  ({'; '.join(msg) or 'refused'})")
                msg = []
            else:
                msg.append(text.strip())
        return refused

    def sysctl(self, items: Sequence[tuple[str, str]]) -> list[str]:
        if not items:
            return []
        proc = _run(["ip", "netns", "exec", self.ns, "sysctl", "-q", "-w", *[f"{k}={v}" for k, v in items]],
                    check=False)
        return [f"sysctl: {line}" for line in proc.stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# Building, collecting, asking


def _dump(lab: Lab, *what: str) -> Any:
    out = lab.ip("-j", *what).stdout.strip()
    return json.loads(out) if out else []


def _wait_links(lab: Lab, setup: Setup) -> None:
    """Carrier and operstate settle (linkwatch runs late) before routes are added."""
    want = {i.name: {"UP"} if i.carrier else {"DOWN", "LOWERLAYERDOWN"} for i in setup.ifaces}
    deadline = time.monotonic() + LINK_WAIT
    while True:
        have = {link["ifname"]: link.get("operstate") for link in _dump(lab, "link", "show")}
        if all(have.get(n) in s for n, s in want.items()) or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _has_gateway(route: str) -> bool:
    return "via" in route.split()


def build(lab: Lab, setup: Setup) -> list[str]:
    """Build ``setup`` in ``lab.ns`` (peer namespaces as needed); returns what was refused."""
    refused: list[str] = []
    lab.ip("link", "set", "lo", "up")
    early = [(k, v) for k, v in setup.sysctls
             if k == "net.ipv4.ip_forward" or k.startswith(("net.ipv4.conf.all.", "net.ipv4.conf.default."))
             or not k.startswith("net.ipv4.conf.")]
    no_ipv6 = [] if setup.ipv6 else [(f"net.ipv6.conf.{s}.disable_ipv6", "1") for s in ("all", "default")]
    # before the devices: writing ip_forward resets every device's forwarding
    refused += lab.sysctl([*KERNEL_DEFAULTS, *no_ipv6, *early])
    for n, iface in enumerate(setup.ifaces):
        peer = lab.create(f"{lab.ns}-p{n}")
        mac = ["address", iface.mac] if iface.mac else []
        lab.ip("link", "add", iface.name, *mac, "type", "veth", "peer", "name", PEER_IF, "netns", peer)
        lab.ip("link", "set", "lo", "up", ns=peer)
        if iface.carrier:
            lab.ip("link", "set", PEER_IF, "up", ns=peer)
        lab.ip("link", "set", iface.name, "up")
    refused += lab.sysctl([(k, v) for k, v in setup.sysctls if (k, v) not in early])
    refused += lab.batch([f"addr add {a} dev {i.name}" for i in setup.ifaces for a in i.addrs]
                         + [f"addr add {a} dev lo" for a in setup.lo_addrs])
    _wait_links(lab, setup)
    refused += lab.batch([f"link set {i.name} group {i.group}" for i in setup.ifaces if i.group])
    # The kernel decides whether a route's gateway is used (the scope of its next hop) once, when
    # the route is added, by a lookup of the gateway in the routes and rules there then; a snapshot
    # shows those of now.  So: routes without a gateway, the rules, then routes with a gateway.
    refused += lab.batch([f"route add {r}" for r in setup.routes if not _has_gateway(r)])
    refused += lab.batch([f"rule add {r}" for r in setup.rules] + [f"rule del {r}" for r in setup.rules_del])
    refused += lab.batch([f"route add {r}" for r in setup.routes if _has_gateway(r)])
    refused += lab.batch([f"link set {i.name} down" for i in setup.ifaces if not i.admin_up])
    return refused


def collect(lab: Lab, dest: Path) -> Path:
    """The namespace as a snapshot directory (shared/spec/snapshot.md, routing files)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, what in (("ip-addr.json", ["addr", "show"]), ("ip-link.json", ["-d", "link", "show"]),
                       ("ip-route.json", ["route", "show", "table", "all"]), ("ip-rule.json", ["rule", "show"])):
        (dest / name).write_text(lab.ip("-j", *what).stdout)
    out = _run(["ip", "netns", "exec", lab.ns, "sysctl", "-a"], check=False).stdout
    (dest / "sysctl.txt").write_text("".join(line + "\n" for line in out.splitlines()
                                             if line.startswith("net.ipv4.")))
    return dest


def _route_get(lab: Lab, words: Sequence[str]) -> Json:
    """``ip -j route get``: the route object, or ``{"error", "message"}``."""
    proc = lab.ip("-j", "route", "get", *words, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        data = json.loads(proc.stdout)
        return dict(data[0]) if isinstance(data, list) and data else {"error": "empty", "message": proc.stdout}
    msg = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
    text = re.sub(r"^(RTNETLINK answers|Error): ", "", msg).rstrip(".")
    return {"error": ERROR_NAMES.get(text, "iproute2: " + text), "message": msg}


def _live_hops(route: Json, sysctl: dict[str, str]) -> list[Json]:
    """route-json.md: a hop is live unless dead, or linkdown with ignore_routes_with_linkdown."""
    def ignore(dev: str) -> bool:
        return any(sysctl.get(f"net.ipv4.conf.{d}.ignore_routes_with_linkdown", "0") != "0" for d in ("all", dev))
    return [h for h in route.get("nexthops", [])
            if "dead" not in h.get("flags", []) and not ("linkdown" in h.get("flags", []) and ignore(h["dev"]))]


def _route_spec(route: Json) -> list[str]:
    """``ip route replace`` words for a multipath route ``ip route get fibmatch`` printed, without its
    next hops (fibmatch prints the type of the answer, e.g. multicast: a multipath route is unicast)."""
    words = []
    words.append(route["dst"])
    for key, word in (("tos", "tos"), ("table", "table"), ("metric", "metric"), ("protocol", "proto"),
                      ("scope", "scope"), ("prefsrc", "src")):
        if key in route:
            words += [word, str(route[key])]
    return words


def _hop_spec(hop: Json, multipath: bool) -> list[str]:
    words = ["nexthop"] if multipath else []
    if "gateway" in hop:
        words += ["via", hop["gateway"]]
    words += ["dev", hop["dev"]]
    if multipath:
        words += ["weight", str(hop.get("weight", 1))]
    return words + (["onlink"] if "onlink" in hop.get("flags", []) else [])


@dataclass
class Answer:
    """The kernel's answer to one query, as a shared kernel case's queries.json entry."""

    args: list[str]
    ip: str
    expected: Json
    alternatives: list[Json] | None = None
    fibmatch: Json | None = None


@dataclass
class Run:
    setup: Setup
    snapshot: Path
    refused: list[str]
    answers: list[Answer]
    notes: list[str] = field(default_factory=list)


def _multipath_variants(lab: Lab, answers: list[Answer], sysctl: dict[str, str], notes: list[str]) -> None:
    """Every live hop's answer, for the queries a multipath route answered."""
    todo: dict[str, tuple[Json, list[Answer]]] = {}
    if not any(len(r.get("nexthops", [])) > 1 for r in _dump(lab, "route", "show", "table", "all")):
        return
    for ans in answers:
        if "error" in ans.expected or "--oif" in ans.args:
            continue
        fm = _route_get(lab, ["fibmatch", *ip_words(ans.args)])
        ans.fibmatch = fm
        if "error" in fm or len(_live_hops(fm, sysctl)) < 2:
            continue
        key = json.dumps(_route_spec(fm))
        todo.setdefault(key, (fm, []))[1].append(ans)
    for route, group in todo.values():
        spec = _route_spec(route)
        hops = _live_hops(route, sysctl)
        alternatives: dict[int, list[Json]] = {id(a): [] for a in group}
        for hop in hops:
            proc = lab.ip("route", "replace", *spec, *_hop_spec(hop, False), check=False)
            if proc.returncode:
                raise RuntimeError(f"multipath variant refused: {shlex.join(spec + _hop_spec(hop, False))}: "
                                   f"{proc.stderr.strip()}")
            for ans in group:
                alternatives[id(ans)].append(_route_get(lab, ip_words(ans.args)))
        keep = [h for h in route["nexthops"] if "dead" not in h.get("flags", [])]
        restore = [*spec, *itertools.chain.from_iterable(_hop_spec(h, len(keep) > 1) for h in keep)]
        lab.ip("route", "replace", *restore)
        if len(keep) < len(route["nexthops"]):
            notes.append(f"restored without its dead hops: {shlex.join(restore)}")
        for ans in group:
            ans.alternatives = alternatives[id(ans)]
    if todo:  # the namespace answers as before the variants
        for ans in answers:
            again = _route_get(lab, ip_words(ans.args))
            same = ("error" in again and again["error"] == ans.expected.get("error")) or (
                "error" not in again and norm(again) in [norm(x) for x in [ans.expected, *(ans.alternatives or [])]])
            if not same:
                raise RuntimeError(f"route get {ans.ip} changed after the multipath variants: {again}")


def _blackhole_probe(lab: Lab, setup: Setup, refused: list[str], answers: list[Answer]) -> None:
    """EINVAL answers: from a blackhole (it becomes EACCES with prohibit instead) or not."""
    einval = [a for a in answers if a.expected.get("error") == "invalid-argument"]
    failed = {line.split("  (")[0] for line in refused}
    routes = [r for r in setup.routes if r.startswith("blackhole ") and f"route add {r}" not in failed]
    rules = [r for r in setup.rules if "blackhole" in r.split() and f"rule add {r}" not in failed]
    if not einval or not (routes or rules):
        return
    lines = [f"route replace prohibit {r.removeprefix('blackhole ')}" for r in routes]
    for rule in rules:
        lines += [f"rule del {rule}", "rule add " + " ".join("prohibit" if w == "blackhole" else w
                                                             for w in rule.split())]
    bad = lab.batch(lines)
    if bad:
        raise RuntimeError(f"blackhole probe refused: {bad}")
    for ans in einval:
        if _route_get(lab, ip_words(ans.args)).get("error") == "prohibited":
            ans.expected["error"] = "blackhole"


def ask(lab: Lab, setup: Setup, refused: list[str], snapshot: Path) -> tuple[list[Answer], list[str]]:
    """Every query of ``setup`` asked in ``lab.ns`` (already built and collected)."""
    answers = [Answer(list(q), "ip route get " + shlex.join(ip_words(q)), _route_get(lab, ip_words(q)))
               for q in setup.queries]
    notes: list[str] = []
    sysctl = dict(line.split(" = ", 1) for line in (snapshot / "sysctl.txt").read_text().splitlines()
                  if " = " in line)
    _multipath_variants(lab, answers, sysctl, notes)
    _blackhole_probe(lab, setup, refused, answers)
    return answers, notes


def run_setup(setup: Setup, snapshot: Path) -> Run:
    """Build ``setup`` in fresh namespaces, write its snapshot to ``snapshot``, ask every query."""
    with Lab() as lab:
        refused = build(lab, setup)
        collect(lab, snapshot)
        answers, notes = ask(lab, setup, refused, snapshot)
    return Run(setup, snapshot, refused, answers, notes)


@contextlib.contextmanager
def built(setup: Setup, snapshot: Path) -> Iterator[tuple[Lab, list[str]]]:
    """``setup`` built and collected into ``snapshot``; the namespace stays while in the block."""
    with Lab() as lab:
        refused = build(lab, setup)
        collect(lab, snapshot)
        yield lab, refused


# ---------------------------------------------------------------------------------------------
# Comparison (shared/kernel-cases/check/compare_routes.py)


def norm(obj: Json) -> Json:
    """The compared view of one ``ip -j route get`` object."""
    out: Json = {}
    for k in KEYS:
        v = obj.get(k, DEFAULTS.get(k))
        if k == "flags":
            v = sorted(str(x) for x in v) if isinstance(v, list) else v
        elif v is not None and not isinstance(v, str):
            v = str(v)
        out[k] = v
    return out


def judge(ans: Answer, out: object) -> list[str]:
    """Differences between a ``pktpath route --format json`` output and the kernel's answer."""
    exp = ans.expected
    if "error" in exp:
        if not isinstance(out, dict) or "error" not in out:
            return [f"expected error {exp['error']!r}, got {json.dumps(out)[:300]}"]
        if out["error"] != exp["error"]:
            return [f"error {out['error']!r}, expected {exp['error']!r} (kernel: {exp.get('message')})"]
        return []
    if not (isinstance(out, list) and len(out) == 1 and isinstance(out[0], dict)):
        return [f"expected a list with one route object, got {json.dumps(out)[:300]}"]
    got = norm(out[0])
    wants = [norm(a) for a in ans.alternatives or []] or [norm(exp)]
    if got in wants:
        return []
    best = min(wants, key=lambda w: sum(w[k] != got[k] for k in KEYS))
    diffs = [f"{k}: {got[k]!r}, expected {best[k]!r}" for k in KEYS if got[k] != best[k]]
    if len(wants) > 1:
        diffs.append(f"(multipath: {len(wants)} acceptable answers: "
                     + "; ".join(f"{w['dev']} via {w['gateway']}" for w in wants) + ")")
    return diffs


def outcome(ans: Answer) -> str:
    """A label for counting: 'error:no-route', 'local/input', 'unicast/output+multipath'..."""
    e = ans.expected
    if "error" in e:
        return "error:" + str(e["error"])
    label = f"{e.get('type', 'unicast')}/{'input' if '--iif' in ans.args else 'output'}"
    return label + ("+multipath" if ans.alternatives else "")
