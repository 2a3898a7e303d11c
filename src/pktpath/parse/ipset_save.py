"""``ipset save`` / ``ipset restore`` text (and ``ipset list`` output) -> sets, and back.

``parse()`` runs the commands the way ``ipset restore`` does (src/ipset.c, lib/ipset.c:
``build_argv``, ``ipset_parser``) and stores what the kernel would hold afterwards
(the types' ``*_uadt`` functions): ranges and CIDRs of address dimensions become one entry per
address, ``hash:net`` ranges become CIDRs, netmasks are applied, defaults are filled in.
``create``/``add``/``del``/``test``/``destroy``/``flush``/``rename``/``swap``, their one-letter
and ``-N``/``-A``/... forms, ``-exist``/``-!``, ``COMMIT`` and ``#`` comments are accepted.
Every refusal is a ``ParseError`` naming ``source:line`` and the ipset error the real tool
prints, or what was expected.  ``render()`` prints sets back in ``ipset save`` form.
Sans-IO: nothing here reads a file (port names come from ``getservbyname`` like ports.py).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from pktpath.errors import ParseError, SourceLoc, UnsupportedFeature
from pktpath.model.ipset import (
    DEFAULT_LIST_SIZE,
    DEFAULT_MAXELEM,
    IFNAMSIZ,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPSET_BITMAP_MAX_RANGE,
    IPSET_MAX_COMMENT_SIZE,
    IPSET_MAX_TIMEOUT,
    IPSET_MAXNAMELEN,
    PROTOS_WITH_PORTS,
    SET_TYPES,
    TYPE_ALIASES,
    CreateOptions,
    Dim,
    Entry,
    Family,
    Iface,
    IpSet,
    Net,
    Part,
    ProtoPort,
    SetType,
    bucket_key,
    effective_bitmask,
    netmask,
    same_elem,
    split_range,
)

#: /etc/protocols (netbase): getprotobyname()/getprotobynumber() as ipset calls them.
PROTOCOLS: Mapping[str, int] = {
    "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
    "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27,
    "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41,
    "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
    "skip": 57, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81,
    "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
    "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
    "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139,
    "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}
#: the aliases column of /etc/protocols (getprotobyname() matches them exactly too)
PROTOCOL_ALIASES: Mapping[str, int] = {
    "IP": 0, "HOPOPT": 0, "ICMP": 1, "IGMP": 2, "GGP": 3, "IP-ENCAP": 4, "ST": 5, "TCP": 6, "EGP": 8,
    "IGP": 9, "PUP": 12, "UDP": 17, "HMP": 20, "XNS-IDP": 22, "RDP": 27, "ISO-TP4": 29, "DCCP": 33,
    "XTP": 36, "DDP": 37, "IDPR-CMTP": 38, "IPv6": 41, "IPv6-Route": 43, "IPv6-Frag": 44, "IDRP": 45,
    "RSVP": 46, "GRE": 47, "IPSEC-ESP": 50, "IPSEC-AH": 51, "SKIP": 57, "IPv6-ICMP": 58, "IPv6-NoNxt": 59,
    "IPv6-Opts": 60, "RSPF": 73, "CPHB": 73, "VMTP": 81, "EIGRP": 88, "OSPFIGP": 89, "AX.25": 93,
    "IPIP": 94, "ETHERIP": 97, "ENCAP": 98, "PIM": 103, "IPCOMP": 108, "VRRP": 112, "L2TP": 115,
    "ISIS": 124, "SCTP": 132, "FC": 133, "Mobility-Header": 135, "UDPLite": 136, "MPLS-in-IP": 137,
    "HIP": 139, "Shim6": 140, "WESP": 141, "ROHC": 142, "Ethernet": 143,
}
PROTO_NAMES: Mapping[int, str] = {n: name for name, n in reversed(list(PROTOCOLS.items()))}

#: lib/icmp.c icmp_typecodes[]: names are matched as case-insensitive prefixes, in order.
ICMP_NAMES: tuple[tuple[str, int, int], ...] = (
    ("echo-reply", 0, 0), ("pong", 0, 0), ("network-unreachable", 3, 0),
    ("host-unreachable", 3, 1), ("protocol-unreachable", 3, 2), ("port-unreachable", 3, 3),
    ("fragmentation-needed", 3, 4), ("source-route-failed", 3, 5), ("network-unknown", 3, 6),
    ("host-unknown", 3, 7), ("network-prohibited", 3, 9), ("host-prohibited", 3, 10),
    ("TOS-network-unreachable", 3, 11), ("TOS-host-unreachable", 3, 12),
    ("communication-prohibited", 3, 13), ("host-precedence-violation", 3, 14),
    ("precedence-cutoff", 3, 15), ("source-quench", 4, 0), ("network-redirect", 5, 0),
    ("host-redirect", 5, 1), ("TOS-network-redirect", 5, 2), ("TOS-host-redirect", 5, 3),
    ("echo-request", 8, 0), ("ping", 8, 0), ("router-advertisement", 9, 0),
    ("router-solicitation", 10, 0), ("ttl-zero-during-transit", 11, 0),
    ("ttl-zero-during-reassembly", 11, 1), ("ip-header-bad", 12, 0),
    ("required-option-missing", 12, 1), ("timestamp-request", 13, 0),
    ("timestamp-reply", 14, 0), ("address-mask-request", 17, 0), ("address-mask-reply", 18, 0),
)
#: lib/icmpv6.c icmpv6_typecodes[]
ICMPV6_NAMES: tuple[tuple[str, int, int], ...] = (
    ("no-route", 1, 0), ("communication-prohibited", 1, 1), ("address-unreachable", 1, 3),
    ("port-unreachable", 1, 4), ("packet-too-big", 2, 0), ("ttl-zero-during-transit", 3, 0),
    ("ttl-zero-during-reassembly", 3, 1), ("bad-header", 4, 0), ("unknown-header-type", 4, 1),
    ("unknown-option", 4, 2), ("echo-request", 128, 0), ("ping", 128, 0),
    ("echo-reply", 129, 0), ("pong", 129, 0), ("router-solicitation", 133, 0),
    ("router-advertisement", 134, 0), ("neighbour-solicitation", 135, 0),
    ("neigbour-solicitation", 135, 0), ("neighbour-advertisement", 136, 0),
    ("neigbour-advertisement", 136, 0), ("redirect", 137, 0),
)

#: src/ui.c ipset_commands[]: order matters, a command is any prefix of one of its names.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("create", ("create", "new", "-N")), ("add", ("add", "-A")), ("del", ("del", "-D")),
    ("test", ("test", "-T")), ("destroy", ("destroy", "x", "-X")), ("list", ("list", "-L")),
    ("save", ("save", "-S")), ("restore", ("restore", "-R")), ("flush", ("flush", "-F")),
    ("rename", ("rename", "e", "-E")), ("swap", ("swap", "w", "-W")),
    ("help", ("help", "-h", "-H")), ("version", ("version", "-v", "-V")), ("quit", ("quit",)),
)
#: lib/ipset.c ipset_envopts[]: (names, takes an argument)
ENVOPTS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("-o", "-output"), True), (("-s", "-sorted"), False), (("-q", "-quiet"), False),
    (("-r", "-resolve"), False), (("-!", "-exist"), False), (("-n", "-name"), False),
    (("-t", "-terse"), False), (("-f", "-file"), True),
)
#: create options that take no value
CREATE_FLAGS = frozenset({"counters", "comment", "skbinfo", "forceadd", "-4", "-6"})
#: add/del/test options that take no value
ADD_FLAGS = frozenset({"nomatch", "wildcard"})
MAX_ENTRIES = 1 << 22  # pktpath's own limit on one set's size in memory


_WORD = re.compile(r"[^ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    col: int


def split_argv(line: str) -> list[_Tok]:
    """build_argv() of lib/ipset.c: blanks separate words, each '"' toggles quoting (it is
    dropped, there is no escape), empty words vanish.  Raises ValueError on an open quote."""
    if '"' not in line:
        return [_Tok(m.group(), m.start() + 1) for m in _WORD.finditer(line)]
    out: list[_Tok] = []
    buf: list[str] = []
    start = 0
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            if not buf:
                start = i
            quoted = not quoted
            if not buf:
                buf.append("")
            continue
        if ch in " \t\r\n" and not quoted:
            if buf and "".join(buf):
                out.append(_Tok("".join(buf), start + 1))
            buf = []
            continue
        if not buf:
            start = i
        buf.append(ch)
    if quoted:
        raise ValueError("Missing close quote!")
    if buf and "".join(buf):
        out.append(_Tok("".join(buf), start + 1))
    return out


def c_number(text: str, maximum: int) -> int | None:
    """strtoull(text, &end, 0) with a full-string and range check (string_to_number_ll)."""
    if text[:2] in ("0x", "0X"):
        digits, base, valid = text[2:], 16, "0123456789abcdefABCDEF"
    elif len(text) > 1 and text[0] == "0":
        digits, base, valid = text[1:], 8, "01234567"
    else:
        digits, base, valid = text, 10, "0123456789"
    if not digits or any(c not in valid for c in digits):
        return None
    value = int(digits, base)
    return value if value <= maximum else None


def fmt_addr(addr: int, family: Family) -> str:
    if family is Family.INET6:
        return str(ipaddress.IPv6Address(addr))
    return str(ipaddress.IPv4Address(addr))


def fmt_mac(mac: int) -> str:
    return ":".join(f"{(mac >> s) & 0xFF:02X}" for s in range(40, -8, -8))


def fmt_proto_port(pp: ProtoPort, family: Family) -> str:
    """ipset_print_proto_port()"""
    name = PROTO_NAMES.get(pp.proto, str(pp.proto))
    if pp.proto in PROTOS_WITH_PORTS:
        return f"{name}:{pp.port}"
    if pp.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        table = ICMP_NAMES if pp.proto == IPPROTO_ICMP else ICMPV6_NAMES
        t, c = pp.port >> 8, pp.port & 0xFF
        for n, nt, nc in table:
            if (nt, nc) == (t, c):
                return f"{name}:{n}"
        return f"{name}:{t}/{c}"
    return f"{name}:{pp.port}"


def render_part(t: SetType, dim: int, part: Part, family: Family) -> str:
    """One element dimension as ``ipset save`` prints it."""
    kind = t.dims[dim]
    if kind is Dim.IP:
        assert isinstance(part, int)
        return fmt_addr(part, family)
    if kind is Dim.NET:
        assert isinstance(part, Net)
        text = fmt_addr(part.addr, family)
        return text if part.cidr == family.host_mask else f"{text}/{part.cidr}"
    if kind is Dim.PORT:
        if isinstance(part, ProtoPort):
            return fmt_proto_port(part, family)
        return str(part)
    if kind is Dim.IFACE:
        assert isinstance(part, Iface)
        return ("physdev:" if part.physdev else "") + part.name
    if kind is Dim.MARK:
        assert isinstance(part, int)
        return f"0x{part:08x}"
    if kind is Dim.MAC:
        assert isinstance(part, int)
        return fmt_mac(part)
    return str(part)


def render_elem(s: IpSet, elem: tuple[Part, ...]) -> str:
    t = s.settype
    return ",".join(render_part(t, i, p, s.family) for i, p in enumerate(elem) if p is not None)


def render_entry(s: IpSet, e: Entry) -> str:
    """The ``add`` line of one entry, options in the order ``ipset save`` prints them."""
    words = ["add", s.name, render_elem(s, e.elem)]
    iface = e.elem[1] if s.type == "hash:net,iface" else None
    for opt in s.settype.add_opts:
        if opt == "timeout" and e.timeout is not None:
            words += ["timeout", str(e.timeout)]
        elif opt == "nomatch" and e.nomatch:
            words.append("nomatch")
        elif opt == "wildcard" and isinstance(iface, Iface) and iface.wildcard:
            words.append("wildcard")
        elif opt == "packets" and e.packets is not None:
            words += ["packets", str(e.packets)]
        elif opt == "bytes" and e.bytes is not None:
            words += ["bytes", str(e.bytes)]
        elif opt == "comment" and e.comment is not None:
            words += ["comment", f'"{e.comment}"']
        elif opt == "skbmark" and e.skbmark is not None:
            mark, mask = e.skbmark
            words += ["skbmark", f"{mark:#x}" if mask == 0xFFFFFFFF else f"{mark:#x}/{mask:#x}"]
        elif opt == "skbprio" and e.skbprio is not None:
            words += ["skbprio", f"{e.skbprio >> 16:x}:{e.skbprio & 0xFFFF:x}"]
        elif opt == "skbqueue" and e.skbqueue is not None:
            words += ["skbqueue", str(e.skbqueue)]
    return " ".join(words)


def render_create(s: IpSet) -> str:
    o = s.opts
    words = ["create", s.name, s.type]
    for opt in s.settype.create_opts:
        if opt == "family":
            words += ["family", str(o.family)]
        elif opt == "range" and o.range is not None:
            lo, hi = o.range
            if s.type == "bitmap:port":
                words += ["range", f"{lo}-{hi}"]
            else:
                words += ["range", f"{fmt_addr(lo, Family.INET)}-{fmt_addr(hi, Family.INET)}"]
        elif opt in ("counters", "comment", "skbinfo", "forceadd"):
            if getattr(o, opt):
                words.append(opt)
        elif opt == "bitmask" and o.bitmask is not None:
            words += ["bitmask", fmt_addr(o.bitmask, s.family)]
        elif opt in ("initval", "markmask"):
            value = getattr(o, opt)
            if value is not None:
                words += [opt, f"0x{value:08x}"]
        else:
            value = getattr(o, opt)
            if value is not None:
                words += [opt, str(value)]
    return " ".join(words)


def render(sets: Mapping[str, IpSet]) -> str:
    """Sets in ``ipset save`` form; list:set sets last, as the kernel dumps them."""
    lines: list[str] = []
    ordered = [s for s in sets.values() if s.type != "list:set"] + \
              [s for s in sets.values() if s.type == "list:set"]
    for s in ordered:
        lines.append(render_create(s))
        lines.extend(render_entry(s, e) for e in s.entries)
    return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------- parsing
def parse(text: str, source: str = "ipset-save.txt", *, exist: bool = False) -> dict[str, IpSet]:
    """Run ``ipset restore`` on ``text`` (or read ``ipset list`` output) and return the
    resulting sets, keyed by name, in the kernel's index order.  ``exist`` is
    ``ipset -exist restore``.  Raises ParseError naming ``source:line``."""
    return _Restore(source, exist).run(text)


@dataclass
class _Draft:
    name: str
    type: SetType
    opts: CreateOptions
    origin: SourceLoc
    entries: dict[int, Entry]  # insertion-ordered; key = serial number
    index: dict[object, list[int]]  # bucket key -> serials
    serial: int = 0

    @property
    def family(self) -> Family:
        return self.type.family or self.opts.family

    def find(self, elem: tuple[Part, ...]) -> int | None:
        for k in self.index.get(bucket_key(self.type, elem), ()):
            if same_elem(self.type, self.entries[k].elem, elem):
                return k
        return None

    def put(self, e: Entry, at: int | None = None) -> None:
        if at is not None:
            self.entries[at] = e
            return
        self.serial += 1
        self.entries[self.serial] = e
        self.index.setdefault(bucket_key(self.type, e.elem), []).append(self.serial)

    def remove(self, k: int) -> None:
        e = self.entries.pop(k)
        self.index[bucket_key(self.type, e.elem)].remove(k)

    def clear(self) -> None:
        self.entries.clear()
        self.index.clear()

    def freeze(self) -> IpSet:
        return IpSet(self.name, self.type.name, self.opts, tuple(self.entries.values()), self.origin)


class _Line:
    """One command line being parsed: the words and a way to point at one of them."""

    def __init__(self, p: _Restore, lineno: int, text: str, words: list[_Tok]) -> None:
        self.p = p
        self.lineno = lineno
        self.text = text
        self.words = words

    def err(self, msg: str, tok: _Tok | None = None) -> ParseError:
        return ParseError(self.p.source, self.lineno, msg, self.text, tok.col if tok else 0)

    def unsupported(self, msg: str, tok: _Tok | None = None) -> UnsupportedFeature:
        return UnsupportedFeature(self.p.source, self.lineno, msg, self.text, tok.col if tok else 0)


class _Restore:
    def __init__(self, source: str, exist: bool) -> None:
        self.source = source
        self.exist_all = exist
        self.sets: dict[str, _Draft] = {}  # kernel index order
        self.slots: list[str | None] = []

    # ------------------------------------------------------------ driver
    def run(self, text: str) -> dict[str, IpSet]:
        lines = text.splitlines()
        first = next((ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
        if first.startswith("Name:"):
            self.run_list(lines)
        else:
            for lineno, raw in enumerate(lines, 1):
                if self.command_line(lineno, raw) == "quit":
                    break
        out: dict[str, IpSet] = {}
        for name in self.slots:
            if name is not None:
                out[name] = self.sets[name].freeze()
        return out

    def command_line(self, lineno: int, raw: str) -> str | None:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped == "COMMIT":
            return None
        try:
            words = split_argv(raw)
        except ValueError as e:
            raise ParseError(self.source, lineno, str(e), raw, len(raw)) from None
        line = _Line(self, lineno, raw, words)
        return self.dispatch(line)

    def dispatch(self, line: _Line) -> str | None:
        words = list(line.words)
        exist = self.exist_all
        rest: list[_Tok] = []
        i = 0
        while i < len(words):  # first pass: environment options anywhere on the line
            w = words[i].text
            bare = w[1:] if w.startswith("--") else w
            env = next((e for e in ENVOPTS if bare in e[0]), None)
            if env is None:
                rest.append(words[i])
                i += 1
                continue
            if bare in ("-!", "-exist"):
                exist = True
            elif bare in ("-f", "-file", "-o", "-output"):
                if i + 1 >= len(words):
                    raise line.err(f"Missing mandatory argument to option {env[0][0]}", words[i])
                if bare in ("-f", "-file"):
                    raise line.err("-file is not allowed inside a restore file", words[i])
                i += 1
            i += 1
        if not rest:
            raise line.err("expected a command (create, add, del, test, destroy, flush, rename, swap)")
        cmd_tok = rest[0]
        cmd = self.match_command(cmd_tok.text)
        if cmd is None:
            hint = ""
            if cmd_tok.text in ("table", "set", "element", "flush") or line.text.lstrip().startswith("add table"):
                hint = " (this looks like nftables syntax, e.g. ipset-translate output)"
            raise line.err(f"No command specified: unknown argument {cmd_tok.text}; expected create, add, "
                           f"del, test, destroy, flush, rename or swap{hint}", cmd_tok)
        args = rest[1:]
        if cmd in ("restore", "help", "version"):
            raise line.err(f"Command `{cmd}' is invalid in restore mode.", cmd_tok)
        if cmd in ("list", "save"):
            return None
        if cmd == "quit":
            return "quit"
        if cmd == "create":
            self.create(line, args, exist)
        elif cmd in ("add", "del", "test"):
            self.adt(line, cmd, args, exist)
        elif cmd in ("destroy", "flush"):
            self.destroy_flush(line, cmd, args, exist)
        elif cmd in ("rename", "swap"):
            self.rename_swap(line, cmd, args)
        return None

    @staticmethod
    def match_command(word: str) -> str | None:
        """ipset_match_cmd(): two leading dashes are ignored, a prefix of a name matches."""
        arg = word[2:] if word.startswith("--") else word
        if not arg:
            return None
        for cmd, names in COMMANDS:
            if any(name.startswith(arg) for name in names):
                return cmd
        return None

    # ------------------------------------------------------------ sets
    def get(self, line: _Line, tok: _Tok) -> _Draft:
        d = self.sets.get(tok.text)
        if d is None:
            hint = ""
            if line.text.split()[:2] in (["add", "table"], ["add", "set"], ["add", "element"],
                                         ["add", "rule"], ["add", "chain"]):
                hint = " (this is nftables syntax, e.g. ipset-translate output, not ipset save)"
            raise line.err(f"The set with the given name does not exist: {tok.text!r}{hint}", tok)
        return d

    def check_name(self, line: _Line, tok: _Tok) -> None:
        if len(tok.text) > IPSET_MAXNAMELEN - 1:
            raise line.err(f"setname '{tok.text}' is longer than {IPSET_MAXNAMELEN - 1} characters", tok)

    def referenced(self, name: str) -> str | None:
        for d in self.sets.values():
            if d.type.name == "list:set" and any(e.elem[0] == name for e in d.entries.values()):
                return d.name
        return None

    def create(self, line: _Line, args: list[_Tok], exist: bool) -> None:
        if len(args) < 2:
            raise line.err("Missing mandatory argument to command create: expected 'create SETNAME TYPENAME "
                           "[options]'")
        name_tok, type_tok = args[0], args[1]
        self.check_name(line, name_tok)
        tname = TYPE_ALIASES.get(type_tok.text, type_tok.text)
        t = SET_TYPES.get(tname)
        if t is None:
            raise line.err(f"Syntax error: typename '{type_tok.text}' is unknown (known: "
                           + ", ".join(SET_TYPES) + ")", type_tok)
        opts = self.create_opts(line, t, args[2:])
        loc = SourceLoc(self.source, line.lineno, line.text)
        old = self.sets.get(name_tok.text)
        if old is not None:
            if exist and old.type is t and _same_header(old.opts, opts):
                return
            raise line.err("Set cannot be created: set with the same name already exists", name_tok)
        self.sets[name_tok.text] = _Draft(name_tok.text, t, opts, loc, {}, {})
        for i, slot in enumerate(self.slots):
            if slot is None:
                self.slots[i] = name_tok.text
                break
        else:
            self.slots.append(name_tok.text)

    def create_opts(self, line: _Line, t: SetType, args: list[_Tok]) -> CreateOptions:
        allowed = set(t.create_opts) | set(t.ignored_opts)
        if t.family is None:
            allowed |= {"-4", "-6"}
        if t.is_bitmap:
            allowed |= {"from", "to"} | ({"network"} if t.name != "bitmap:port" else set())
        kw: dict[str, object] = {}
        seen: dict[str, _Tok] = {}
        i = 0
        while i < len(args):
            tok = args[i]
            opt = tok.text[2:] if tok.text.startswith("--") else tok.text
            if opt not in allowed:
                raise line.err(f"Unknown argument: `{tok.text}' (create options of {t.name}: "
                               + " ".join(t.create_opts) + ")", tok)
            val: _Tok | None = None
            if opt not in CREATE_FLAGS:
                if i + 1 >= len(args):
                    raise line.err(f"Missing mandatory argument of option `{opt}'", tok)
                val = args[i + 1]
                i += 1
            i += 1
            seen[opt] = val or tok
            if opt in t.ignored_opts and not (t.is_bitmap and opt in ("from", "to", "network")):
                continue
            self.create_opt(line, t, opt, tok, val, kw)
        fam = t.family or kw.get("family", Family.INET)
        assert isinstance(fam, Family)
        bits = fam.host_mask
        if t.is_bitmap:
            if "from" in kw or "to" in kw:
                if not ("from" in kw and "to" in kw):
                    raise line.err("Mandatory option `to' is missing" if "from" in kw else
                                   "Mandatory option `from' is missing")
                lo, hi = kw.pop("from"), kw.pop("to")
                assert isinstance(lo, int) and isinstance(hi, int)
                kw["range"] = (min(lo, hi), max(lo, hi))
            if "range" not in kw:
                raise line.err("Mandatory option `range' is missing")
        if t.is_hash:
            kw.setdefault("hashsize", 1024)
            kw.setdefault("maxelem", DEFAULT_MAXELEM)
            kw.setdefault("bucketsize", 12)
        if t.name == "list:set":
            kw.setdefault("size", DEFAULT_LIST_SIZE)
        if "netmask" in kw and "bitmask" in kw:
            raise line.err("netmask and bitmask options are mutually exclusive, provide only one",
                           seen["bitmask"])
        if kw.get("netmask") == bits:
            del kw["netmask"]
        if kw.get("bitmask") == (1 << bits) - 1:
            del kw["bitmask"]
        if t.name == "bitmap:ip":
            self.bitmap_ip_range(line, kw, seen)
        if t.name == "bitmap:ip,mac":
            lo, hi = _range_of(kw)
            if hi - lo + 1 > IPSET_BITMAP_MAX_RANGE + 1:
                raise line.err("The range you specified exceeds the size limit of the set type", seen["range"])
        if t.name == "hash:ip,mark" and "markmask" not in kw:
            kw["markmask"] = 0xFFFFFFFF
        if t.family is None:
            kw["family"] = fam
        elif "family" in kw:
            del kw["family"]
        return CreateOptions(**kw)  # type: ignore[arg-type]

    def create_opt(self, line: _Line, t: SetType, opt: str, tok: _Tok, val: _Tok | None,
                   kw: dict[str, object]) -> None:
        def number(maximum: int, what: str = opt) -> int:
            assert val is not None
            n = c_number(val.text, maximum)
            if n is None:
                raise line.err(f"Syntax error: '{val.text}' is invalid as number for {what} "
                               f"(expected 0..{maximum})", val)
            return n

        if opt in ("-4", "-6"):
            kw["family"] = Family.INET if opt == "-4" else Family.INET6
        elif opt == "family":
            assert val is not None
            fam = {"inet": Family.INET, "ipv4": Family.INET, "inet6": Family.INET6,
                   "ipv6": Family.INET6}.get(val.text)
            if fam is None:
                raise line.err(f"Syntax error: unknown family {val.text!r}, expected inet or inet6", val)
            kw["family"] = fam
        elif opt == "hashsize":
            n = max(number(0xFFFFFFFF), 64)
            kw["hashsize"] = 1 << (n - 1).bit_length()
        elif opt in ("maxelem", "size"):
            n = number(0xFFFFFFFF)
            kw[opt] = max(n, 4) if opt == "size" else n
        elif opt == "bucketsize":
            n = number(0xFF)
            kw["bucketsize"] = 2 if n < 2 else 12 if n > 12 else n + (n % 2)
        elif opt in ("initval", "markmask"):
            kw[opt] = number(0xFFFFFFFF)
        elif opt == "timeout":
            kw["timeout"] = self.timeout(line, val)
        elif opt in ("counters", "comment", "skbinfo", "forceadd"):
            kw[opt] = True
        elif opt == "netmask":
            nm_fam = kw.get("family", t.family or Family.INET)
            assert isinstance(nm_fam, Family)
            n = number(nm_fam.host_mask)
            if n < 1:
                raise line.err("The value of the netmask parameter is invalid", val)
            kw["netmask"] = n
        elif opt == "bitmask":
            bm_fam = kw.get("family", t.family or Family.INET)
            assert isinstance(bm_fam, Family) and val is not None
            kw["bitmask"] = self.address(line, val, val.text, bm_fam)
            if kw["bitmask"] == 0:
                raise line.err("The value of the netmask parameter is invalid", val)
        elif opt == "range" and t.name == "bitmap:port":
            assert val is not None
            lo, hi = self.port_range(line, val, val.text.split(":", 1)[-1], "tcp")
            kw["range"] = (lo, hi)
        elif opt in ("from", "to") and t.name == "bitmap:port":
            assert val is not None
            kw[opt] = self.port_range(line, val, val.text, "tcp")[0]
        elif opt == "range" or opt == "network":
            assert val is not None
            lo, hi, cidr = self.ip_spec(line, val, val.text, Family.INET, allow_range=True)
            if cidr is not None:
                if cidr >= 32:  # bitmap_ip_create(): cidr >= HOST_MASK is refused
                    raise line.err("The value of the CIDR parameter of the IP address is invalid", val)
                lo &= netmask(cidr)
            kw["range"] = (min(lo, hi), max(lo, hi))
        elif opt in ("from", "to"):
            assert val is not None
            kw[opt] = self.address(line, val, val.text, Family.INET)

    def bitmap_ip_range(self, line: _Line, kw: dict[str, object], seen: dict[str, _Tok]) -> None:
        """bitmap_ip_create(): netmask widens the range; at most 65536 elements."""
        lo, hi = _range_of(kw)
        nm = kw.get("netmask")
        if isinstance(nm, int):
            m = netmask(nm)
            lo, hi = lo & m, hi | (~m & 0xFFFFFFFF)
            span = hi - lo + 1
            mask_bits = 32 - (span.bit_length() - 1) if span & (span - 1) == 0 else -1
            if mask_bits < 0 or nm <= mask_bits:
                raise line.err("Element is out of the range of the set: the netmask must be longer "
                               "than the range's prefix", seen["netmask"])
            elements = 1 << (nm - mask_bits)
        else:
            elements = hi - lo + 1
        if elements > IPSET_BITMAP_MAX_RANGE + 1:
            raise line.err("The range you specified exceeds the size limit of the set type", seen.get("range"))
        kw["range"] = (lo, hi)

    # ------------------------------------------------------------ values
    def timeout(self, line: _Line, val: _Tok | None) -> int:
        assert val is not None
        n = c_number(val.text, 0xFFFFFFFF)
        if n is None:
            raise line.err(f"Syntax error: '{val.text}' is invalid as number for timeout", val)
        if n > IPSET_MAX_TIMEOUT:
            raise line.err(f"Syntax error: timeout value is too large, maximum is {IPSET_MAX_TIMEOUT}", val)
        return n

    def address(self, line: _Line, tok: _Tok, text: str, family: Family) -> int:
        if family is not Family.INET6:
            octets = text.split(".")
            if len(octets) == 4 and all(o.isdigit() and len(o) <= 3 and (o == "0" or o[0] != "0")
                                        for o in octets):
                a, b, c, d = (int(o) for o in octets)
                if max(a, b, c, d) <= 255:
                    return (a << 24) | (b << 16) | (c << 8) | d
        try:
            if family is Family.INET6:
                return int(ipaddress.IPv6Address(text))
            return int(ipaddress.IPv4Address(text))
        except ValueError:
            other = Family.INET if family is Family.INET6 else Family.INET6
            try:
                self_other = ipaddress.ip_address(text)
            except ValueError:
                self_other = None
            if self_other is not None:
                want = "IPv6" if family is Family.INET6 else "IPv4"
                raise line.err(f"Syntax error: cannot parse {text} as a(n) {want} address "
                               f"(the set's family is {family}, not {other})", tok) from None
            raise line.err(f"Syntax error: cannot parse {text!r} as an {family} address "
                           "(pktpath does not resolve host names)", tok) from None

    def ip_spec(self, line: _Line, tok: _Tok, text: str, family: Family,
                allow_range: bool) -> tuple[int, int, int | None]:
        """``A``, ``A/CIDR`` or ``A-B`` -> (first, last, cidr-or-None).  A/CIDR keeps the
        unmasked first address (callers mask as the kernel does)."""
        bits = family.host_mask
        if "-" in text and family is Family.INET:
            a, _, b = text.partition("-")
            if not allow_range:
                raise line.err(f"FROM-TO IP range is not allowed here ({text})", tok)
            lo, hi = self.address(line, tok, a, family), self.address(line, tok, b, family)
            return lo, hi, None
        if "/" in text:
            a, _, c = text.partition("/")
            cidr = c_number(c, 255)
            if cidr is None or cidr > bits:
                raise line.err("The value of the CIDR parameter of the IP address is invalid", tok)
            addr = self.address(line, tok, a, family)
            if not allow_range and cidr != bits:
                raise line.err(f"IP/CIDR range is not allowed here ({text})", tok)
            m = netmask(cidr, bits)
            return addr, (addr & m) | (~m & ((1 << bits) - 1)), cidr
        addr = self.address(line, tok, text, family)
        return addr, addr, None

    def port_number(self, line: _Line, tok: _Tok, text: str, proto: str) -> int:
        n = c_number(text, 0xFFFF)
        if n is not None:
            return n
        name = text.replace("\\", "")
        try:
            return socket.getservbyname(name, proto)
        except OSError:
            raise line.err(f"Syntax error: cannot parse '{text}' as a {proto} port", tok) from None

    def port_range(self, line: _Line, tok: _Tok, text: str, proto: str) -> tuple[int, int]:
        """``PORT`` or ``PORT-PORT`` (a '\\-' belongs to a service name)."""
        i = 0
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == "-" and i > 0:
                lo = self.port_number(line, tok, text[:i], proto)
                hi = self.port_number(line, tok, text[i + 1:], proto)
                return (lo, hi) if lo <= hi else (hi, lo)
            i += 1
        n = self.port_number(line, tok, text, proto)
        return n, n

    def proto_port(self, line: _Line, tok: _Tok, text: str, family: Family) -> tuple[int, int, int]:
        """ipset_parse_proto_port(): (proto, first port, last port)."""
        proto_text, sep, port_text = text.partition(":")
        if not sep:
            proto_text, port_text = "tcp", text
        lookup = "ipv6-icmp" if proto_text.lower() == "icmpv6" else proto_text
        proto = PROTOCOLS.get(lookup, PROTOCOL_ALIASES.get(lookup))
        if proto is None:
            proto = c_number(proto_text, 0xFF)
            if proto is None:
                raise line.err(f"Syntax error: cannot parse '{proto_text}' as a protocol", tok)
        if proto == 0:
            raise line.err("Invalid protocol specified", tok)
        if proto in PROTOS_WITH_PORTS:
            lo, hi = self.port_range(line, tok, port_text, PROTO_NAMES.get(proto, proto_text))
            return proto, lo, hi
        if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            want = Family.INET if proto == IPPROTO_ICMP else Family.INET6
            if family is not want:
                what = "ICMP" if proto == IPPROTO_ICMP else "ICMPv6"
                raise line.err(f"Syntax error: Protocol {what} can be used with family {want} only", tok)
            table = ICMP_NAMES if proto == IPPROTO_ICMP else ICMPV6_NAMES
            for n, typ, code in table:
                if n.lower().startswith(port_text.lower()) and port_text:
                    return proto, typ << 8 | code, typ << 8 | code
            typ_text, slash, code_text = port_text.partition("/")
            typ_n, code_n = c_number(typ_text, 0xFF), c_number(code_text, 0xFF)
            if not slash or typ_n is None or code_n is None:
                raise line.err(f"Syntax error: cannot parse '{port_text}' as an ICMP name or "
                               "TYPE/CODE", tok)
            return proto, typ_n << 8 | code_n, typ_n << 8 | code_n
        if port_text != "0":
            raise line.err(f"Syntax error: Protocol {proto_text} can be used with pseudo port value 0 only.",
                           tok)
        return proto, 0, 0

    def mac(self, line: _Line, tok: _Tok, text: str) -> int:
        parts = text.split(":")
        if len(text) != 17 or len(parts) != 6 or not all(
                len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
            raise line.err(f"Syntax error: cannot parse '{text}' as an Ethernet address "
                           "(expected XX:XX:XX:XX:XX:XX)", tok)
        return int("".join(parts), 16)

    # ------------------------------------------------------------ add / del / test
    def adt(self, line: _Line, cmd: str, args: list[_Tok], exist: bool) -> None:
        if len(args) < 2:
            raise line.err(f"Missing mandatory argument to command {cmd}: expected '{cmd} SETNAME ENTRY'")
        d = self.get(line, args[0])
        elem_tok = args[1]
        t = d.type
        ext, flags, before = self.adt_opts(line, d, cmd, args[2:])
        if t.name == "list:set":
            self.adt_list(line, cmd, d, elem_tok, ext, before, exist)
            return
        elems = self.expand(line, d, elem_tok, flags)
        for elem in elems:
            if cmd == "test":
                if not self.contains(d, elem):
                    raise line.err(f"{elem_tok.text} is NOT in set {d.name} (ipset restore stops at a "
                                   "failing test)", elem_tok)
                continue
            k = d.find(elem)
            if cmd == "del":
                if k is None:
                    if exist:
                        continue
                    raise line.err("Element cannot be deleted from the set: it's not added", elem_tok)
                d.remove(k)
                continue
            entry = self.new_entry(d, elem, ext, "nomatch" in flags)
            if k is not None:
                old = d.entries[k]
                if t.name == "bitmap:ip,mac" and old.elem[1] is None and elem[1] is not None:
                    d.put(entry, k)  # bitmap_ipmac_do_add(): fills in the MAC, no error
                    continue
                if not exist:
                    raise line.err("Element cannot be added to the set: it's already added", elem_tok)
                if t.name == "bitmap:ip,mac" and elem[1] is None:
                    entry = replace(entry, elem=old.elem)  # the stored MAC stays
                # ip_set_init_counter(): a counter not given keeps its value
                packets, nbytes = ext.get("packets", old.packets), ext.get("bytes", old.bytes)
                assert isinstance(packets, int | None) and isinstance(nbytes, int | None)
                entry = replace(entry, packets=packets, bytes=nbytes)
                d.put(entry, k)
                continue
            if t.is_hash and len(d.entries) >= (d.opts.maxelem or DEFAULT_MAXELEM):
                if d.opts.forceadd:
                    raise line.unsupported("the set is full and has forceadd: the kernel would evict an "
                                           "entry chosen by its hash, which pktpath cannot reproduce",
                                           elem_tok)
                raise line.err("Hash is full, cannot add more elements", elem_tok)
            if len(d.entries) >= MAX_ENTRIES:
                raise line.unsupported(f"more than {MAX_ENTRIES} entries in one set", elem_tok)
            d.put(entry)

    def adt_opts(self, line: _Line, d: _Draft, cmd: str, args: list[_Tok]
                 ) -> tuple[dict[str, object], set[str], tuple[str, str] | None]:
        t = d.type
        allowed = set(t.add_opts) if cmd == "add" else (
            {"nomatch"} if cmd == "test" and t.nomatch else set())
        if cmd == "del" and t.name == "hash:net,iface":
            allowed |= {"wildcard"}
        if t.name == "list:set":
            allowed |= {"before", "after"}
        ext: dict[str, object] = {}
        flags: set[str] = set()
        before: tuple[str, str] | None = None
        i = 0
        while i < len(args):
            tok = args[i]
            opt = tok.text[2:] if tok.text.startswith("--") else tok.text
            if opt not in allowed:
                raise line.err(f"Unknown argument: `{tok.text}' ({cmd} options of {t.name}: "
                               + (" ".join(sorted(allowed)) or "none") + ")", tok)
            if opt in ADD_FLAGS:
                flags.add(opt)
                i += 1
                continue
            if i + 1 >= len(args):
                raise line.err(f"Missing mandatory argument of option `{opt}'", tok)
            val = args[i + 1]
            i += 2
            if opt in ("before", "after"):
                before = (opt, val.text)
            elif opt == "timeout":
                if d.opts.timeout is None:
                    raise line.err("Timeout cannot be used: set was created without timeout support", tok)
                ext["timeout"] = self.timeout(line, val)
            elif opt in ("packets", "bytes"):
                if not d.opts.counters:
                    raise line.err("Packet/byte counters cannot be used: set was created without counter "
                                   "support", tok)
                n = c_number(val.text, (1 << 64) - 1)
                if n is None:
                    raise line.err(f"Syntax error: '{val.text}' is invalid as number for {opt}", val)
                ext[opt] = n
            elif opt == "comment":
                if not d.opts.comment:
                    raise line.err("Comment cannot be used: set was created without comment support", tok)
                if len(val.text) > IPSET_MAX_COMMENT_SIZE:
                    raise line.err(f"Syntax error: Comment is longer than the maximum allowed "
                                   f"{IPSET_MAX_COMMENT_SIZE} characters", val)
                ext["comment"] = val.text
            elif opt in ("skbmark", "skbprio", "skbqueue"):
                if not d.opts.skbinfo:
                    raise line.err("Skbinfo mapping cannot be used: set was created without skbinfo "
                                   "support", tok)
                ext[opt] = self.skb_value(line, opt, val)
        return ext, flags, before

    def skb_value(self, line: _Line, opt: str, val: _Tok) -> object:
        text = val.text
        if opt == "skbmark":
            mark_text, sep, mask_text = text.partition("/")
            mark = _hex(mark_text) if mark_text.startswith("0x") else None
            mask = (_hex(mask_text) if mask_text.startswith("0x") else None) if sep else 0xFFFFFFFF
            if mark is None or mask is None:
                raise line.err("Syntax error: Invalid skbmark format, it should be:  MARK/MASK or MARK "
                               "(see manpage)", val)
            return (mark, mask)
        if opt == "skbprio":
            maj, sep, mnr = text.partition(":")
            a, b = _hex(maj), _hex(mnr)
            if not sep or a is None or b is None:
                raise line.err("Syntax error: Invalid skbprio format, it should be:MAJOR:MINOR (see manpage)",
                               val)
            return ((a & 0xFFFF) << 16) | (b & 0xFFFF)
        n = c_number(text, 0xFFFF)
        if n is None:
            raise line.err(f"Syntax error: '{text}' is invalid as number for skbqueue (0..65535)", val)
        return n

    def new_entry(self, d: _Draft, elem: tuple[Part, ...], ext: Mapping[str, object], nomatch: bool) -> Entry:
        o = d.opts
        timeout = ext.get("timeout", o.timeout)
        packets = ext.get("packets", 0) if o.counters else None
        nbytes = ext.get("bytes", 0) if o.counters else None
        skbmark = ext.get("skbmark")
        if skbmark == (0, 0):
            skbmark = None
        prio = ext.get("skbprio") or None
        queue = ext.get("skbqueue") or None
        return Entry(elem, nomatch, timeout, packets, nbytes, ext.get("comment"),  # type: ignore[arg-type]
                     skbmark, prio, queue)  # type: ignore[arg-type]

    def adt_list(self, line: _Line, cmd: str, d: _Draft, tok: _Tok, ext: dict[str, object],
                 before: tuple[str, str] | None, exist: bool) -> None:
        """list_set_uadt() / list_set_uadd()"""
        name = tok.text
        member = self.sets.get(name)
        if member is None:
            raise line.err(f"Set to be added/deleted/tested as element does not exist: no set named "
                           f"{name!r} for list:set {d.name}", tok)
        if member.type.name == "list:set":
            raise line.err("Sets with list:set type cannot be added to the set.", tok)
        if before is not None and before[1] not in self.sets:
            raise line.err("The set to which you referred with 'before' or 'after' does not exist.", tok)
        order = [e.elem[0] for e in d.entries.values()]
        k = d.find((name,))
        if cmd == "test":
            if k is None:
                raise line.err(f"{name} is NOT in set {d.name} (ipset restore stops at a failing test)", tok)
            return
        if cmd == "del":
            if k is None:
                if exist:
                    return
                raise line.err("Element cannot be deleted from the set: it's not added", tok)
            d.remove(k)
            return
        if before is not None and before[1] not in order:
            raise line.err("The set to which you referred with 'before' or 'after' is not added to the set.",
                           tok)
        entry = self.new_entry(d, (name,), ext, False)
        if k is not None:
            if not exist:
                raise line.err("Element cannot be added to the set: it's already added", tok)
            d.put(entry, k)
            return
        if len(d.entries) >= (d.opts.size or DEFAULT_LIST_SIZE):
            raise line.err("The set is full, more elements cannot be added.", tok)
        if before is None:
            d.put(entry)
            return
        # Rebuild the member order with the new one before/after its reference.
        entries = list(d.entries.values())
        pos = order.index(before[1]) + (1 if before[0] == "after" else 0)
        entries.insert(pos, entry)
        d.clear()
        for e in entries:
            d.put(e)

    # ------------------------------------------------------------ element expansion
    def expand(self, line: _Line, d: _Draft, tok: _Tok, flags: set[str]) -> list[tuple[Part, ...]]:
        """The elements the kernel's uadt loop adds for one element text, in its order."""
        t = d.type
        parts = tok.text.split(",")
        ndims = len(t.dims)
        if t.name == "bitmap:ip,mac" and len(parts) == 1:
            parts.append("")
        if len(parts) != ndims:
            raise line.err(f"Syntax error: {t.name} elements have {ndims} comma-separated part(s): "
                           f"expected {_elem_syntax(t)}, got '{tok.text}'", tok)
        per_dim: list[list[Part]] = []
        for i, (kind, text) in enumerate(zip(t.dims, parts, strict=True)):
            per_dim.append(self.dim_values(line, d, tok, i, kind, text, flags))
        return [tuple(p) for p in itertools.product(*per_dim)]

    def dim_values(self, line: _Line, d: _Draft, tok: _Tok, i: int, kind: Dim, text: str,
                   flags: set[str]) -> list[Part]:
        t = d.type
        fam = d.family
        bits = fam.host_mask
        allow_range = i in t.range_dims and (fam is Family.INET or kind is Dim.PORT)
        if not text and not (t.name == "bitmap:ip,mac" and i == 1):
            raise line.err(f"Syntax error: empty element part, expected {_elem_syntax(t)}", tok)
        if kind is Dim.IP:
            if fam is Family.INET6 and "/" in text:
                a, _, c = text.partition("/")
                if c_number(c, 255) != 128:
                    raise line.err("The value of the CIDR parameter of the IP address is invalid", tok)
                text = a
            lo, hi, cidr = self.ip_spec(line, tok, text, fam, allow_range)
            if cidr == 0:
                raise line.err("The value of the CIDR parameter of the IP address is invalid", tok)
            if cidr is not None:
                lo &= netmask(cidr, bits)
            return self.ip_values(line, d, tok, i, lo, hi, cidr is not None or hi != lo)
        if kind is Dim.NET:
            return self.net_values(line, d, tok, text)
        if kind is Dim.PORT:
            if t.name == "bitmap:port":
                port_text = text
                pname = "tcp"
                if ":" in text:
                    pname, _, port_text = text.partition(":")
                    if pname not in ("tcp", "udp"):
                        raise line.err(f"Syntax error: cannot parse '{text}' as a [tcp|udp:]PORT", tok)
                lo, hi = self.port_range(line, tok, port_text, pname)
                if not allow_range and lo != hi:
                    raise line.err("FROM-TO port range is not allowed here", tok)
                assert d.opts.range is not None
                if lo < d.opts.range[0] or hi > d.opts.range[1]:
                    raise line.err("Element is out of the range of the set", tok)
                return list(range(lo, hi + 1))
            proto, lo, hi = self.proto_port(line, tok, text, fam)
            if lo != hi and not allow_range:
                raise line.err("FROM-TO port range is not allowed here", tok)
            return [ProtoPort(proto, p) for p in range(lo, hi + 1)]
        if kind is Dim.IFACE:
            physdev = text.startswith("physdev:")
            name = text[len("physdev:"):] if physdev else text
            if len(name) > IFNAMSIZ - 1:
                raise line.err(f"Syntax error: interface name '{name}' is longer than {IFNAMSIZ - 1} "
                               "characters", tok)
            return [Iface(name, physdev, "wildcard" in flags)]
        if kind is Dim.MARK:
            mark = c_number(text, 0xFFFFFFFF)
            if mark is None:
                raise line.err(f"Syntax error: '{text}' is invalid as number for mark", tok)
            return [mark & (d.opts.markmask if d.opts.markmask is not None else 0xFFFFFFFF)]
        if kind is Dim.MAC:
            if not text:
                return [None]
            mac = self.mac(line, tok, text)
            if mac == 0 and t.is_hash:
                raise line.err("Null-valued element, cannot be stored in a hash type of set", tok)
            return [mac]
        return [text]

    def ip_values(self, line: _Line, d: _Draft, tok: _Tok, i: int, lo: int, hi: int,
                  is_range: bool) -> list[Part]:
        """The addresses of an IP dimension, stepping as the type's uadt loop does."""
        t = d.type
        if lo > hi:
            if t.name == "hash:ip" and hi == 0:
                raise line.err("Null-valued element, cannot be stored in a hash type of set", tok)
            lo, hi = hi, lo
        step = 1
        if t.name in ("hash:ip", "hash:ip,port") and i == 0:
            lo &= effective_bitmask(d.opts, d.family.host_mask)
            if lo == 0:
                raise line.err("Null-valued element, cannot be stored in a hash type of set"
                               if t.name == "hash:ip" else "Kernel error received: Invalid argument", tok)
            if t.name == "hash:ip" and d.opts.netmask is not None:
                step = 1 << (d.family.host_mask - d.opts.netmask)
        if t.name in ("bitmap:ip", "bitmap:ip,mac"):
            assert d.opts.range is not None
            first, last = d.opts.range
            if not first <= lo <= last or hi > last:
                raise line.err("Element is out of the range of the set", tok)
            if t.name == "bitmap:ip":
                # bitmap_ip_uadt(): for (; !before(ip_to, ip); ip += hosts) id = ip_to_id(ip)
                mask = netmask(d.opts.netmask or 32)
                hosts = 1 << (32 - (d.opts.netmask or 32))
                return [a & mask for a in range(lo, hi + 1, hosts)]
        if (hi - lo) // step + 1 > MAX_ENTRIES:
            raise line.unsupported(f"range {tok.text} expands to more than {MAX_ENTRIES} entries", tok)
        return list(range(lo, hi + 1, step))

    def net_values(self, line: _Line, d: _Draft, tok: _Tok, text: str) -> list[Part]:
        t = d.type
        fam = d.family
        bits = fam.host_mask
        bm = effective_bitmask(d.opts, bits) if t.name == "hash:net,net" else (1 << bits) - 1
        if "-" in text and fam is Family.INET:
            lo, hi, _ = self.ip_spec(line, tok, text, fam, allow_range=True)
            if lo > hi:
                lo, hi = hi, lo
            if lo == 0 and hi == 0xFFFFFFFF:
                raise line.err("Invalid range, covers the whole address space", tok)
            nets = list(split_range(lo, hi, bits))
            if len(nets) > MAX_ENTRIES:
                raise line.unsupported(f"range {text} expands to too many networks", tok)
            return [Net(n.addr & bm, n.cidr) for n in nets]
        addr_text, sep, c_text = text.partition("/")
        cidr = bits
        if sep:
            c = c_number(c_text, 255)
            if c is None or c > bits:
                raise line.err("The value of the CIDR parameter of the IP address is invalid", tok)
            cidr = c
        if cidr == 0 and not t.net0:
            raise line.err("The value of the CIDR parameter of the IP address is invalid", tok)
        addr = self.address(line, tok, addr_text, fam)
        return [Net(addr & netmask(cidr, bits) & bm, cidr)]

    def contains(self, d: _Draft, elem: tuple[Part, ...]) -> bool:
        """The uadt TEST of ``ipset test``: an element whose networks are host addresses is
        looked up through the set's prefix lengths, most specific first (mtype_test_cidrs);
        anything else must be stored as is.  A nomatch entry answers no."""
        t = d.type
        host = d.family.host_mask
        dims = [i for i, k in enumerate(t.dims) if k is Dim.NET]
        nets = [p for i in dims if isinstance(p := elem[i], Net)]
        if not dims or any(n.cidr != host for n in nets):
            k = d.find(elem)
            return k is not None and not d.entries[k].nomatch
        lengths = [sorted({p.cidr for e in d.entries.values() if isinstance(p := e.elem[i], Net)},
                          reverse=True) for i in dims]
        for combo in itertools.product(*lengths):
            probe = list(elem)
            for i, n, c in zip(dims, nets, combo, strict=True):
                probe[i] = Net(n.addr & netmask(c, host), c)
            k = d.find(tuple(probe))
            if k is not None:
                return not d.entries[k].nomatch
        return False

    # ------------------------------------------------------------ set-level commands
    def destroy_flush(self, line: _Line, cmd: str, args: list[_Tok], exist: bool) -> None:
        if args and args[0].text not in self.sets and cmd == "destroy" and exist:
            return
        targets = [self.get(line, args[0])] if args else list(self.sets.values())
        if cmd == "flush":
            for d in targets:
                d.clear()
            return
        for d in targets:
            by = self.referenced(d.name)
            if by is not None:
                raise line.err(f"Set cannot be destroyed: it is in use by a kernel component "
                               f"(set {d.name} is a member of list:set {by})", args[0] if args else None)
        for d in targets:
            del self.sets[d.name]
            self.slots[self.slots.index(d.name)] = None

    def rename_swap(self, line: _Line, cmd: str, args: list[_Tok]) -> None:
        if len(args) < 2:
            raise line.err(f"Missing mandatory argument to command {cmd}: expected '{cmd} FROM-SETNAME "
                           "TO-SETNAME'")
        a = self.get(line, args[0])
        if cmd == "rename":
            new = args[1].text
            self.check_name(line, args[1])
            if new in self.sets:
                raise line.err("Set cannot be renamed: a set with the new name already exists", args[1])
            if self.referenced(a.name):
                raise line.err("Set cannot be renamed: it is in use by another system", args[0])
            del self.sets[a.name]
            self.slots[self.slots.index(a.name)] = new
            a.name = new
            self.sets[new] = a
            self._reorder()
            return
        b = self.sets.get(args[1].text)
        if b is None:
            raise line.err("Sets cannot be swapped: the second set does not exist", args[1])
        if _features(a.type) != _features(b.type) or a.family is not b.family:
            raise line.err("The sets cannot be swapped: their type does not match", args[1])
        a.name, b.name = b.name, a.name
        self.sets[a.name], self.sets[b.name] = a, b

    def _reorder(self) -> None:
        self.sets = {n: self.sets[n] for n in self.slots if n is not None}

    # ------------------------------------------------------------ ipset list
    def run_list(self, lines: Sequence[str]) -> None:
        """``ipset list`` output: Name/Type/Header lines become ``create``, Members ``add``."""
        blocks = list(_list_blocks(lines))
        # list:set members may name sets listed later: create them all first.
        pending: list[tuple[int, str, list[tuple[int, str]]]] = []
        for start, fields, members, has_members in blocks:
            name = fields.get("Name")
            stype = fields.get("Type")
            if name is None or stype is None:
                raise ParseError(self.source, start[0], "ipset list block without 'Name:' and 'Type:' lines",
                                 start[1])
            if not has_members:
                raise ParseError(self.source, start[0], f"set {name[1]}: terse listing (no 'Members:' "
                                 "section): the entries are unknown; capture 'ipset save' instead",
                                 start[1])
            header = fields.get("Header", (stype[0], ""))
            text = f"create {name[1]} {stype[1]} {header[1]}"
            self.command_line_at(header[0], text, lines[header[0] - 1])
            pending.append((start[0], name[1], members))
        for _, set_name, members in sorted(pending, key=lambda p: self.sets[p[1]].type.name == "list:set"):
            for lineno, member in members:
                self.command_line_at(lineno, f"add {set_name} {member}", lines[lineno - 1])

    def command_line_at(self, lineno: int, command: str, shown: str) -> None:
        try:
            words = split_argv(command)
        except ValueError as e:
            raise ParseError(self.source, lineno, str(e), shown) from None
        line = _Line(self, lineno, shown, words)
        try:
            self.dispatch(line)
        except ParseError as e:
            raise type(e)(self.source, lineno, e.msg, shown, 0) from None


def _list_blocks(lines: Sequence[str]) -> Iterator[tuple[tuple[int, str], dict[str, tuple[int, str]],
                                                         list[tuple[int, str]], bool]]:
    fields: dict[str, tuple[int, str]] = {}
    members: list[tuple[int, str]] = []
    start = (0, "")
    in_members = False
    has_members = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if line.startswith("Name:"):
            if fields:
                yield start, fields, members, has_members
            fields, members, in_members, has_members = {}, [], False, False
            start = (lineno, raw)
        if not line.strip():
            in_members = False
            continue
        if in_members:
            members.append((lineno, line.strip()))
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ParseError("ipset list", lineno, "expected 'Key: value' in an ipset list header", raw)
        if key == "Members":
            in_members = has_members = True
            continue
        fields[key] = (lineno, value.strip())
    if fields:
        yield start, fields, members, has_members


def _range_of(kw: Mapping[str, object]) -> tuple[int, int]:
    r = kw["range"]
    assert isinstance(r, tuple)
    lo, hi = r
    assert isinstance(lo, int) and isinstance(hi, int)
    return lo, hi


def _hex(text: str) -> int | None:
    t = text[2:] if text[:2] in ("0x", "0X") else text
    if not t or not all(c in "0123456789abcdefABCDEF" for c in t):
        return None
    return int(t, 16) & 0xFFFFFFFF


def _features(t: SetType) -> frozenset[str]:
    """The type's feature bits as ip_set_swap() compares them (IPSET_TYPE_*)."""
    names = {Dim.PORT: "port", Dim.IFACE: "iface", Dim.MARK: "mark", Dim.MAC: "mac", Dim.NAME: "name"}
    feats: set[str] = set()
    for d in t.dims:
        if d in (Dim.IP, Dim.NET):
            feats.add("ip2" if "ip" in feats else "ip")
        else:
            feats.add(names[d])
    if t.nomatch:
        feats.add("nomatch")
    return frozenset(feats)


def _same_header(a: CreateOptions, b: CreateOptions) -> bool:
    """mtype_same_set(): what -exist compares when a set is created again."""
    return replace(a, initval=None) == replace(b, initval=None) or a == b


def _elem_syntax(t: SetType) -> str:
    names = {Dim.IP: "IP", Dim.NET: "IP[/CIDR]", Dim.PORT: "[PROTO:]PORT", Dim.IFACE: "[physdev:]IFACE",
             Dim.MARK: "MARK", Dim.MAC: "MAC", Dim.NAME: "SETNAME"}
    if t.name == "bitmap:port":
        return "PORT"
    if t.name == "bitmap:ip,mac":
        return "IP[,MAC]"
    return ",".join(names[d] for d in t.dims)


def sets_by_name(sets: Iterable[IpSet]) -> dict[str, IpSet]:
    """Helper for tests and callers that build sets by hand."""
    return {s.name: s for s in sets}
