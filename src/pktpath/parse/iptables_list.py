"""``iptables -L [-n] [-v] [-x] [--line-numbers]`` listings -> ``Ruleset``, and what they do not carry.

A listing is what ``print_firewall()`` (iptables/iptables.c) and each extension's ``print()``
write: per chain a ``Chain NAME (policy P ...)`` or ``Chain NAME (N references)`` line, a
column header, then one row per rule -- ``[num] [pkts bytes] target [!]prot opt [in out]
[!]source [!]destination`` followed by the matches' and the target's own text.  Each row is
rebuilt into the iptables-save options of its rule (``tcp dpt:!22`` -> ``-m tcp ! --dport 22``,
``LOG flags 0 level 4 prefix "x"`` -> ``-j LOG --log-prefix x``...), the rebuilt text goes
through :func:`pktpath.parse.iptables_save.parse`, and each rule keeps the listing's file, line
and row as its origin (errors name them too).

What a listing carries and what it does not
-------------------------------------------
* ``[goto]`` marks ``-g``; ``dpt:!22`` and ``!`` before addresses, interfaces and ``prot`` keep
  every negation; ``opt`` keeps ``-f``; ``-n`` prints protocol numbers (``0`` is ``all``).
* Without ``-v`` there are no ``in``/``out`` columns: every rule then keeps an uncertain
  interface test (an ``UnparsedRule``, both outcomes followed) and a note says so.
* Without ``-n`` addresses, ports, users and protocols are names.  The names of the standard
  /etc/services, /etc/protocols, /etc/networks (``loopback``, ``link-local``), ``localhost``
  and ``root`` are read back (each with a note); any other name (a host's own DNS or
  /etc/passwd entry) leaves that test uncertain.  A conntrack address printed ``anywhere``
  has lost its mask and is uncertain too.
* Counters are kept when exact (``-x``, or small enough to print without K/M/G).
* Several matches of one kind print as one (``ctstate NEW ctproto 6``): they are rebuilt as one
  match, which matches the same packets.
* A row whose text is not understood is never dropped: it becomes a rule whose only match is an
  ``UnparsedRule`` (with the row's own address, interface and protocol tests, and its verdict,
  jump or target when those can be read) and a note names it.  A target that is neither a
  chain of the listing nor one whose text pktpath reads back is lost: the rule keeps its
  matches and an ``UnparsedRule`` saying so, and a note names it.
* Chains the listing does not show (``iptables -L CHAIN``) are not invented: built-in chains
  are taken as empty with policy ACCEPT (as iptables-restore creates them), with a note.

Tables come from the prompt line's ``-t TABLE`` (``[user@host]$ iptables -vnL -t nat``), else
from the ``table`` argument when the block's built-in chains fit it, else from the built-in
chains the block lists (and its targets: DNAT/SNAT/MASQUERADE/REDIRECT -> nat, CT/NOTRACK ->
raw), filter when nothing tells.  Sans-IO: ``parse(text, source)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from pktpath.engine.skb import proto_name
from pktpath.errors import ParseError, SourceLoc, UnsupportedFeature
from pktpath.ext.m_icmp import ICMP_NAMES
from pktpath.ext.t_log import LEVELS
from pktpath.ext.unparsed import UnparsedRule
from pktpath.model.xtables import BUILTIN_CHAINS, Chain, Match, Rule, Ruleset, Table
from pktpath.parse import iptables_save
from pktpath.parse.tokens import quote_word

__all__ = ["NO_IFACE_REASON", "looks_like_listing", "parse"]

NO_IFACE_REASON = "the listing has no -v: its -i/-o interfaces are not shown"
STANDARD = frozenset({"ACCEPT", "DROP", "QUEUE", "RETURN"})
OPT_COLUMN = frozenset({"--", "-f", "!f"})
HOOK_ORDER = {"PREROUTING": 0, "INPUT": 1, "FORWARD": 2, "OUTPUT": 3, "POSTROUTING": 4}
TABLE_PREFERENCE = ("filter", "nat", "mangle", "raw", "security")
NAT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"})
RAW_TARGETS = frozenset({"CT", "NOTRACK"})
MANGLE_TARGETS = frozenset({"TTL", "TOS", "DSCP", "ECN", "TPROXY", "CHECKSUM"})

# The protocol numbers /etc/protocols names (iptables -L without -n prints getprotobynumber()).
PROTOCOLS = {"all": 0, "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
             "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29,
             "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43,
             "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57,
             "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81,
             "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
             "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
             "mobility-header": 135, "mh": 135, "ipv6-mh": 135, "udplite": 136, "mpls-in-ip": 137,
             "manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143}
# /etc/networks of netbase and the /etc/hosts name every distribution has.
NETWORK_NAMES = {"default": "0.0.0.0", "loopback": "127.0.0.0", "link-local": "169.254.0.0",
                 "localhost": "127.0.0.1"}
USER_NAMES = {"root": "0"}  # the only user and group name whose id every host shares
# netbase's /etc/services (primary names and aliases): what getservbyport() prints without -n.
_SERVICES_TEXT = (
    "tcpmux:1 echo:7 discard:9 null:9 sink:9 systat:11 users:11 daytime:13 netstat:15 qotd:17 quote:17 chargen:19 "
    "source:19 ttytst:19 ftp-data:20 fsp:21 fspd:21 ftp:21 ssh:22 telnet:23 mail:25 smtp:25 time:37 timserver:37 "
    "nicname:43 whois:43 tacacs:49 domain:53 bootps:67 bootpc:68 tftp:69 gopher:70 finger:79 http:80 www:80 "
    "kerberos:88 kerberos5:88 krb5:88 kerberos-sec:88 iso-tsap:102 tsap:102 acr-nema:104 pop3:110 pop-3:110 "
    "portmapper:111 sunrpc:111 auth:113 authentication:113 ident:113 tap:113 nntp:119 readnews:119 untp:119 ntp:123 "
    "epmap:135 loc-srv:135 netbios-ns:137 netbios-dgm:138 netbios-ssn:139 imap:143 imap2:143 snmp:161 snmp-trap:162 "
    "snmptrap:162 cmip-man:163 cmip-agent:164 mailq:174 xdmcp:177 bgp:179 smux:199 qmtp:209 z3950:210 wais:210 "
    "ipx:213 ptp-event:319 ptp-general:320 pawserv:345 zserv:346 rpc2portmap:369 codaauth2:370 clearcase:371 "
    "Clearcase:371 ldap:389 svrloc:427 https:443 snpp:444 microsoft-ds:445 kpasswd:464 submissions:465 ssmtp:465 "
    "urd:465 saft:487 gss-http:488 isakmp:500 rtsp:554 nqs:607 asf-rmcp:623 qmqp:628 ipp:631 ldp:646 exec:512 "
    "biff:512 comsat:512 login:513 who:513 whod:513 shell:514 cmd:514 syslog:514 printer:515 spooler:515 talk:517 "
    "ntalk:518 route:520 router:520 routed:520 gdomap:538 uucp:540 uucpd:540 klogin:543 kshell:544 krcmd:544 "
    "dhcpv6-client:546 dhcpv6-server:547 afpovertcp:548 nntps:563 snntp:563 submission:587 ldaps:636 tinc:655 "
    "silc:706 kerberos-adm:749 domain-s:853 rsync:873 ftps-data:989 ftps:990 telnets:992 imaps:993 pop3s:995 "
    "socks:1080 proofd:1093 rootd:1094 openvpn:1194 rmiregistry:1099 lotusnote:1352 lotusnotes:1352 ms-sql-s:1433 "
    "ms-sql-m:1434 ingreslock:1524 datametrics:1645 old-radius:1645 sa-msg-port:1646 old-radacct:1646 "
    "kermit:1649 groupwise:1677 l2f:1701 l2tp:1701 radius:1812 radius-acct:1813 radacct:1813 cisco-sccp:2000 "
    "nfs:2049 gnunet:2086 rtcm-sc104:2101 gsigatekeeper:2119 gris:2135 cvspserver:2401 venus:2430 venus-se:2431 "
    "codasrv:2432 codasrv-se:2433 mon:2583 dict:2628 f5-globalsite:2792 gsiftp:2811 gpsd:2947 gds-db:3050 "
    "gds_db:3050 icpv2:3130 icp:3130 isns:3205 iscsi-target:3260 mysql:3306 ms-wbt-server:3389 nut:3493 "
    "distcc:3632 daap:3689 svn:3690 subversion:3690 suucp:4031 sysrqd:4094 sieve:4190 epmd:4369 remctl:4373 "
    "f5-iquery:4353 ntske:4460 ipsec-nat-t:4500 iax:4569 mtn:4691 radmin-port:4899 sip:5060 sip-tls:5061 "
    "xmpp-client:5222 jabber-client:5222 xmpp-server:5269 jabber-server:5269 cfengine:5308 mdns:5353 "
    "postgresql:5432 postgres:5432 freeciv:5556 rptp:5556 amqps:5671 amqp:5672 x11:6000 x11-0:6000 x11-1:6001 "
    "x11-2:6002 x11-3:6003 x11-4:6004 x11-5:6005 x11-6:6006 x11-7:6007 gnutella-svc:6346 gnutella-rtr:6347 "
    "redis:6379 sge-qmaster:6444 sge_qmaster:6444 sge-execd:6445 sge_execd:6445 mysql-proxy:6446 babel:6696 "
    "ircs-u:6697 bbs:7000 afs3-fileserver:7000 afs3-callback:7001 afs3-prserver:7002 afs3-vlserver:7003 "
    "afs3-kaserver:7004 afs3-volser:7005 afs3-bos:7007 afs3-update:7008 afs3-rmtsys:7009 font-service:7100 "
    "xfs:7100 http-alt:8080 webcache:8080 puppet:8140 bacula-dir:9101 bacula-fd:9102 bacula-sd:9103 "
    "xmms2:9667 nbd:10809 zabbix-agent:10050 zabbix-trapper:10051 amanda:10080 dicom:11112 hkp:11371 db-lsp:17500 "
    "dcap:22125 gsidcap:22128 wnn6:22273 kerberos4:750 kerberos-iv:750 kdc:750 kerberos-master:751 "
    "kerberos_master:751 passwd-server:752 passwd_server:752 krb-prop:754 krb_prop:754 krb5_prop:754 "
    "hprop:754 zephyr-srv:2102 zephyr-clt:2103 zephyr-hm:2104 iprop:2121 supfilesrv:871 supfiledbg:1127 "
    "poppassd:106 moira-db:775 moira_db:775 moira-update:777 moira_update:777 moira-ureg:779 moira_ureg:779 "
    "spamd:783 skkserv:1178 predict:1210 rmtcfg:1236 xtel:1313 xtelw:1314 support:1529 cfinger:2003 frox:2121 "
    "zebrasrv:2600 zebra:2601 ripd:2602 ripngd:2603 ospfd:2604 bgpd:2605 ospf6d:2606 ospfapi:2607 isisd:2608 "
    "afbackup:2988 afmbackup:2989 fax:4557 hylafax:4559 distmp3:4600 munin:4949 lrrd:4949 enbd-cstatd:5051 "
    "enbd-sstatd:5052 pcrd:5151 noclog:5354 hostmon:5355 nrpe:5666 nsca:5667 mrtd:5674 bgpsim:5675 canna:5680 "
    "syslog-tls:6514 sane-port:6566 sane:6566 saned:6566 ircd:6667 zope-ftp:8021 tproxy:8081 omniorb:8088 "
    "clc-build-daemon:8990 xinetd:9098 git:9418 zope:9673 webmin:10000 kamanda:10081 amandaidx:10082 "
    "amidxtape:10083 smsqp:11201 xpilot:15345 sgi-cmsd:17001 sgi-crsd:17002 sgi-gcd:17003 sgi-cad:17004 "
    "binkp:24554 asp:27374 csync2:30865 dircproxy:57000 tfido:60177 fido:60179 "
)
SERVICES: dict[str, int] = {}
for _entry in _SERVICES_TEXT.split():
    SERVICES.setdefault(_entry.partition(":")[0], int(_entry.partition(":")[2]))
LOG_FLAGS = ((0x01, "--log-tcp-sequence", "tcp-sequence"), (0x02, "--log-tcp-options", "tcp-options"),
             (0x04, "--log-ip-options", "ip-options"), (0x08, "--log-uid", "uid"),
             (0x20, "--log-macdecode", "macdecode"))
TCP_FLAGS = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20))

_TOKEN = re.compile(r"\S+")
_WS = re.compile(r"\s*")
_CHAIN = re.compile(r"^Chain\s+(\S+)\s+\((?:policy\s+(\w+)(?:\s+(\d+[KMGT]?)\s+packets,\s+(\d+[KMGT]?)\s+bytes)?"
                    r"|(\d+)\s+references?)\)\s*$")
_PROMPT = re.compile(r"(?:^|[\s$#>;(])(?:\S*/)?(ip6?tables)(?:-legacy|-nft)?(?=\s|$)(.*)$")
_COUNT = re.compile(r"^(\d+)([KMGT]?)$")
_IPV6 = re.compile(r"^!?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$")


# ---------------------------------------------------------------- notes
class _Notes:
    """Plain-words notes, one per distinct message, naming every listing line it is about."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, list[int]] = {}

    def add(self, line: int, msg: str) -> None:
        self.lines.setdefault(msg, [])
        if line and line not in self.lines[msg]:
            self.lines[msg].append(line)

    def render(self) -> list[str]:
        out = []
        for msg, lines in self.lines.items():
            out.append(f"{self.source}:{_ranges(lines)}: {msg}" if lines else f"{self.source}: {msg}")
        return out


def _ranges(lines: Sequence[int], shown: int = 8) -> str:
    """``12,14-20`` (the first ``shown`` runs, then how many lines in all)."""
    parts: list[str] = []
    start = prev = lines[0]
    for n in [*lines[1:], -1]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    if len(parts) > shown:
        return ",".join(parts[:shown]) + f",... ({len(lines)} lines)"
    return ",".join(parts)


# ---------------------------------------------------------------- the listing's structure
@dataclass(frozen=True, slots=True)
class _Header:
    line: int
    has_num: bool
    has_counters: bool
    has_ifaces: bool


@dataclass(slots=True)
class _Row:
    line: int
    raw: str
    num: int | None
    counters: tuple[str, str] | None
    target: str
    proto: str
    opt: str
    iniface: str | None
    outiface: str | None
    src: str
    dst: str
    rest: str
    header: _Header


@dataclass(slots=True)
class _ChainBlock:
    name: str
    line: int
    raw: str
    policy: str | None
    policy_counters: tuple[str, str] | None
    refs: int | None
    header: _Header | None = None
    rows: list[_Row] = field(default_factory=list)


@dataclass(slots=True)
class _Block:
    line: int
    prompt_table: str | None
    prompt_line: int = 0
    chains: list[_ChainBlock] = field(default_factory=list)

    def builtins(self) -> list[str]:
        return [c.name for c in self.chains if c.policy is not None]


def looks_like_listing(text: str) -> bool:
    """A ``Chain NAME (...)`` line followed by a column header naming ``target`` and ``prot``."""
    if "Chain " not in text:
        return False  # (the common case, found without splitting a 300k-line dump)
    expect_header = False
    for line in text.splitlines():
        stripped = line.strip()
        if expect_header:
            if not stripped:
                continue
            words = stripped.split()
            if "target" in words and "prot" in words:
                return True
            expect_header = False
        if stripped.startswith("Chain ") and "(" in stripped:
            expect_header = True
    return False


def _split_row(raw: str, line: int, header: _Header) -> _Row | None:
    toks = [(m.group(0), m.end()) for m in _TOKEN.finditer(raw)]
    i = 0
    num: int | None = None
    counters: tuple[str, str] | None = None
    if header.has_num:
        if not toks or not toks[0][0].isdigit():
            return None
        num = int(toks[0][0])
        i = 1
    if header.has_counters:
        if len(toks) < i + 2 or not (_COUNT.match(toks[i][0]) and _COUNT.match(toks[i + 1][0])):
            return None
        counters = (toks[i][0], toks[i + 1][0])
        i += 2
    if len(toks) > i + 1 and toks[i + 1][0] in OPT_COLUMN:
        target = ""
    elif len(toks) > i + 2 and toks[i + 2][0] in OPT_COLUMN:
        target = toks[i][0]
        i += 1
    else:
        return None
    proto, opt = toks[i][0], toks[i + 1][0]
    i += 2
    iniface = outiface = None
    if header.has_ifaces:
        if len(toks) < i + 2:
            return None
        iniface, outiface = toks[i][0], toks[i + 1][0]
        i += 2
    if len(toks) < i + 2:
        return None
    src, dst = toks[i][0], toks[i + 1][0]
    rest = raw[toks[i + 1][1]:].strip()
    return _Row(line, raw, num, counters, target, proto, opt, iniface, outiface, src, dst, rest, header)


def _lists(args: Sequence[str]) -> bool:
    """An iptables command line that lists (-L, --list, or a cluster such as -nvL)."""
    return any(a in ("-L", "--list") or (a.startswith("-") and not a.startswith("--") and "L" in a) for a in args)


def _prompt_table(args: Sequence[str]) -> str:
    """The ``-t TABLE`` of an iptables command line (getopt clusters too); filter without one."""
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a in ("-t", "--table"):
            return nxt
        if a.startswith("--table="):
            return a.partition("=")[2]
        if a.startswith("-") and not a.startswith("--") and "t" in a[1:]:
            return a[a.index("t", 1) + 1:] or nxt
    return "filter"


def _scan(text: str, source: str, notes: _Notes) -> list[_Block]:
    blocks: list[_Block] = []
    block: _Block | None = None
    chain: _ChainBlock | None = None
    pending_prompt: tuple[str | None, int] | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        m = _CHAIN.match(stripped)
        if m:
            name = m.group(1)
            policy = m.group(2)
            counters = (m.group(3), m.group(4)) if m.group(3) else None
            refs = int(m.group(5)) if m.group(5) is not None else None
            if block is None or pending_prompt is not None or _starts_new_block(block, name, policy):
                named, pline = pending_prompt if pending_prompt is not None else (None, 0)
                block = _Block(lineno, named, pline)
                blocks.append(block)
                pending_prompt = None
            chain = _ChainBlock(name, lineno, stripped, policy, counters, refs)
            block.chains.append(chain)
            continue
        words = stripped.split()
        if chain is not None and "target" in words and "prot" in words and "source" in words:
            chain.header = _Header(lineno, "num" in words, "pkts" in words, "in" in words)
            continue
        if chain is not None and chain.header is not None:
            row = _split_row(line, lineno, chain.header)
            if row is not None:
                chain.rows.append(row)
                continue
            if any((_IPV6.match(w) and "::" in w) or w.count(":") == 7 for w in words[:9]):
                raise UnsupportedFeature(source, lineno, "this is an ip6tables listing: IPv6 is not modelled yet "
                                         "(give the IPv4 iptables listing)", stripped)
        p = _PROMPT.search(stripped)
        if p and _lists(p.group(2).split()):
            if p.group(1) == "ip6tables":
                raise UnsupportedFeature(source, lineno, "this is an ip6tables listing: IPv6 is not modelled yet "
                                         "(give the IPv4 iptables listing)", stripped)
            table: str | None = _prompt_table(p.group(2).split())
            if table not in BUILTIN_CHAINS:
                notes.add(lineno, f"the command names table {table!r}, which is not an iptables table: the table is "
                          "inferred from the chains")
                table = None
            pending_prompt = (table, lineno)
            chain = None
            continue
        if chain is not None and chain.header is None:
            notes.add(lineno, f"a line under chain {chain.name} before its column header is not understood, "
                      f"skipped: {stripped!r}")
        elif chain is not None:
            notes.add(lineno, f"not a rule row of chain {chain.name} (the columns do not fit its header), "
                      f"skipped: {stripped!r}")
        elif not stripped.startswith("#"):
            notes.add(lineno, f"not part of a listing, skipped: {stripped!r}")
    return blocks


def _starts_new_block(block: _Block, name: str, policy: str | None) -> bool:
    """iptables lists a table's built-in chains in hook order, then its user chains: a chain
    seen before, or a built-in chain after a user chain or out of hook order, starts the next table."""
    if any(c.name == name for c in block.chains):
        return True
    if policy is None:
        return False
    if any(c.policy is None for c in block.chains):
        return True
    last = [HOOK_ORDER.get(c.name, -1) for c in block.chains]
    return bool(last) and HOOK_ORDER.get(name, 99) <= max(last)


# ---------------------------------------------------------------- table of a block
def _block_table(block: _Block, hint: str | None, used: set[str], notes: _Notes) -> str:
    builtins = set(block.builtins())
    shown = ", ".join(block.builtins()) or "none"
    fits = [t for t in TABLE_PREFERENCE if builtins <= set(BUILTIN_CHAINS[t])]
    if not fits:
        raise ParseError(notes.source, block.line, f"built-in chains {shown} are not those of one table",
                         block.chains[0].raw)
    if block.prompt_table is not None:
        if block.prompt_table in fits:
            return block.prompt_table
        notes.add(block.prompt_line, f"the command names table {block.prompt_table}, but the listing's built-in "
                  f"chains ({shown}) are not that table's: the table is inferred from them")
    if hint is not None and hint in fits:
        return hint
    exact = [t for t in fits if builtins == set(BUILTIN_CHAINS[t])]
    if len(exact) == 1:
        return exact[0]
    targets = {r.target for c in block.chains for r in c.rows}
    hinted = [t for t in fits if targets & {"nat": NAT_TARGETS, "raw": RAW_TARGETS, "mangle": MANGLE_TARGETS}.get(
        t, frozenset())]
    if hinted:
        if len(hinted) == 1:
            return hinted[0]
        chosen = hinted[0]
    elif exact:  # filter and security have the same built-in chains: filter unless already listed
        chosen = next((t for t in exact if t not in used), exact[0])
        if chosen == "filter":
            return chosen
    else:
        chosen = fits[0]
    notes.add(block.line, f"no command line names the table and its built-in chains ({shown}) do not tell which "
              f"it is: taken as {chosen}")
    return chosen


# ---------------------------------------------------------------- the match column's grammar
@dataclass(frozen=True, slots=True)
class _Frag:
    """What one extension printed, as iptables-save options.

    ``module`` is the ``-m`` name ("" for the target, "[goto]" for the goto flag); ``key``
    orders the parts of an extension that prints several items (conntrack, owner...) so that
    consecutive items in print order rebuild one match; ``unknown`` says why the test cannot be
    read back (an ``UnparsedRule`` then stands for it)."""

    module: str
    words: tuple[str, ...] = ()
    key: int = 0
    unknown: str = ""
    notes: tuple[str, ...] = ()


class _Text(str):
    """A free-text value (comment, log prefix, set or helper name): always quoted when rebuilt."""

    __slots__ = ()


Candidates = Iterator[tuple[_Frag, int]]
ItemParser = Callable[[str, int], Candidates]
ITEMS: list[ItemParser] = []


def _item(fn: ItemParser) -> ItemParser:
    ITEMS.append(fn)
    return fn


def _ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def _neg(flag: str | None) -> tuple[str, ...]:
    return ("!",) if flag and flag.strip() else ()


def _port(tok: str) -> tuple[str | None, tuple[str, ...]]:
    if tok.isdigit():
        return tok, ()
    if tok in SERVICES:
        return str(SERVICES[tok]), (f"service name {tok!r} read as port {SERVICES[tok]} (netbase's /etc/services)",)
    return None, ()


def _ports(text: str, sep: str = ":") -> tuple[str | None, tuple[str, ...], str]:
    """A port, range or list of them with service names resolved; (value, notes, unknown name)."""
    out: list[str] = []
    notes: list[str] = []
    for part in text.split(","):
        pieces = []
        for tok in part.split(":"):
            value, why = _port(tok)
            if value is None:
                return None, (), tok
            pieces.append(value)
            notes.extend(why)
        out.append(sep.join(pieces))
    return ",".join(out), tuple(notes), ""


def _unknown_service(module: str, name: str) -> _Frag:
    return _Frag(module, unknown=f"service name {name!r} (listing without -n) is not in netbase's /etc/services")


def _address(tok: str) -> tuple[str | None, tuple[str, ...]]:
    """An address column or conntrack address: (ADDR[/MASK] or None when unreadable, notes)."""
    host, sep, mask = tok.partition("/")
    if _IPV4.match(host):
        return tok, ()
    if host in NETWORK_NAMES:
        value = NETWORK_NAMES[host] + sep + mask
        return value, (f"{tok!r} read as {value} (the standard /etc/networks or /etc/hosts name)",)
    return None, ()


_L4 = re.compile(r"(tcp|udp|sctp|dccp|udplite)(?=\s|$|flags:)")
_L4_PORT = re.compile(r"(spt|dpt)(?:s:(!?)([\w.+-]+?):([\w.+-]+?)|:(!?)([\w.+-]+?))(?=\s|$|flags:)")
_TCP_FLAGS = re.compile(r"flags:\s*(!?)\s*(0x[0-9A-Fa-f]+|[A-Z,]+)/(0x[0-9A-Fa-f]+|[A-Z,]+)(?=\s|$)")
_TCP_OPTION = re.compile(r"option=(!?)(\d+)(?=\s|$)")


def _tcp_flag_names(text: str) -> str | None:
    if text.startswith("0x"):
        value = int(text, 16)
        if value & ~0x3F:
            return None
        return ",".join(n for n, b in TCP_FLAGS if value & b) or "NONE"
    names = text.split(",")
    if any(n not in dict(TCP_FLAGS) and n != "NONE" for n in names):
        return None
    return text


@_item
def _l4(text: str, pos: int) -> Candidates:
    """``tcp spt:1024 dpts:80:90 option=2 flags:0x17/0x02`` (and 1.4's ``dpt:22flags: 0x17/0x02``)."""
    m = _L4.match(text, pos)
    if not m:
        return
    name = m.group(1)
    words: list[str] = []
    notes: list[str] = []
    i = m.end()
    while True:
        j = _ws(text, i)
        p = _L4_PORT.match(text, j) if j > i else None
        if p:
            ranged = p.group(3) is not None
            value, why, bad = _ports(p.group(3) + ":" + p.group(4) if ranged else p.group(6))
            if value is None:
                yield _unknown_service(name, bad), p.end()
                return
            words += [*_neg(p.group(2) if ranged else p.group(5)), "--sport" if p.group(1) == "spt" else "--dport",
                      value]
            notes += why
            i = p.end()
            continue
        o = _TCP_OPTION.match(text, j) if name == "tcp" and j > i else None
        if o:
            words += [*_neg(o.group(1)), "--tcp-option", o.group(2)]
            i = o.end()
            continue
        f = _TCP_FLAGS.match(text, j) if name == "tcp" else None
        if f:
            mask, cmp = _tcp_flag_names(f.group(2)), _tcp_flag_names(f.group(3))
            if mask is None or cmp is None:
                return
            words += [*_neg(f.group(1)), "--tcp-flags", mask, cmp]
            i = f.end()
            continue
        break
    yield _Frag(name, tuple(words), notes=tuple(notes)), i


_ICMP_NUM = re.compile(r"icmp\s*(!?)\s*type\s+(\d+)(?:\s+code\s+(\d+)|\s+codes\s+(\d+)-(\d+))?(?=\s|$)")
_ICMP_NAME = re.compile(r"icmp\s+(!?)([A-Za-z][\w-]*)(?=\s|$)")
_ICMP_BY_VALUE = {v: k for k, v in reversed(ICMP_NAMES.items())}


@_item
def _icmp(text: str, pos: int) -> Candidates:
    """``icmptype 8``, ``icmptype 3 code 4``, ``icmp !type 0``, ``icmp echo-request`` (without -n)."""
    m = _ICMP_NUM.match(text, pos)
    if m:
        icmp_type = int(m.group(2))
        if m.group(3) is not None:
            value = f"{icmp_type}/{m.group(3)}"
        elif m.group(4) is not None:
            named = _ICMP_BY_VALUE.get((icmp_type, int(m.group(4)), int(m.group(5))))
            if named is None:
                yield _Frag("icmp", unknown=f"ICMP code range {m.group(4)}-{m.group(5)} has no --icmp-type "
                            "spelling"), m.end()
                return
            value = named
        else:
            value = str(icmp_type)
        yield _Frag("icmp", (*_neg(m.group(1)), "--icmp-type", value)), m.end()
        return
    m = _ICMP_NAME.match(text, pos)
    if m and m.group(2) in ICMP_NAMES:
        yield _Frag("icmp", (*_neg(m.group(1)), "--icmp-type", m.group(2))), m.end()


_PORT_ITEM = r"[\w.+-]+(?::[\w.+-]+)?"
_MULTIPORT = re.compile(rf"multiport\s+(sports|dports|ports)\s+(!?)\s*({_PORT_ITEM}(?:,{_PORT_ITEM})*)(?=\s|$)")


@_item
def _multiport(text: str, pos: int) -> Candidates:
    m = _MULTIPORT.match(text, pos)
    if not m:
        return
    value, why, bad = _ports(m.group(3))
    if value is None:
        yield _unknown_service("multiport", bad), m.end()
        return
    yield _Frag("multiport", (*_neg(m.group(2)), "--" + m.group(1), value), notes=why), m.end()


_STATES = r"[A-Z_]+(?:,[A-Z_]+)*"
_STATE = re.compile(rf"(?:(!)\s*)?state\s+({_STATES})(?=\s|$)")
_CT_KEYS = ("state", "proto", "origsrc", "origdst", "replsrc", "repldst", "origsrcport", "origdstport",
            "replsrcport", "repldstport", "status", "expire", "dir")
_CONNTRACK = re.compile(r"(?:(!)\s*)?ct(" + "|".join(sorted(_CT_KEYS, key=len, reverse=True)) + r")\s+(\S+)(?=\s|$)")


@_item
def _state(text: str, pos: int) -> Candidates:
    m = _STATE.match(text, pos)
    if m:
        yield _Frag("state", (*_neg(m.group(1)), "--state", m.group(2))), m.end()


@_item
def _conntrack(text: str, pos: int) -> Candidates:
    """``ctstate``, ``ctproto``, ``ctorigsrc``... each an item; consecutive ones in print order are one match."""
    m = _CONNTRACK.match(text, pos)
    if not m:
        return
    key, value = m.group(2), m.group(3)
    notes: tuple[str, ...] = ()
    if key in ("origsrc", "origdst", "replsrc", "repldst"):
        if value == "anywhere":
            yield _Frag("conntrack", key=_CT_KEYS.index(key) + 1,
                        unknown=f"ct{key} printed as 'anywhere' (listing without -n): its mask is not shown"), m.end()
            return
        addr, notes = _address(value)
        if addr is None:
            yield _Frag("conntrack", key=_CT_KEYS.index(key) + 1,
                        unknown=f"ct{key} {value!r} is a host name (listing without -n)"), m.end()
            return
        value = addr
    yield _Frag("conntrack", (*_neg(m.group(1)), "--ct" + key, value), _CT_KEYS.index(key) + 1,
                notes=notes), m.end()


_MARK = re.compile(r"(mark|MARK|connmark|CONNMARK) match\s*(!?)\s*(0x[0-9A-Fa-f]+(?:/0x[0-9A-Fa-f]+)?)(?=\s|$)")


@_item
def _mark(text: str, pos: int) -> Candidates:
    m = _MARK.match(text, pos)
    if m:
        yield _Frag(m.group(1).lower(), (*_neg(m.group(2)), "--mark", m.group(3))), m.end()


@_item
def _comment(text: str, pos: int) -> Candidates:
    """``/* TEXT */``: every `` */`` could end it (a comment may hold one); the shortest first."""
    if not text.startswith("/* ", pos):
        return
    start = pos + 3
    end = text.find(" */", start)
    while end >= 0:
        stop = end + 3
        if stop == len(text) or text[stop].isspace():
            yield _Frag("comment", ("--comment", _Text(text[start:end]))), stop
        end = text.find(" */", end + 1)


_ADDRTYPE_PART = re.compile(r"\s+(?:(src|dst)-type\s*(!?)\s*([A-Z]+(?:,[A-Z]+)*)|(limit-in|limit-out))(?=\s|$)")


@_item
def _addrtype(text: str, pos: int) -> Candidates:
    if not text.startswith("ADDRTYPE match", pos):
        return
    i = pos + len("ADDRTYPE match")
    words: list[str] = []
    while m := _ADDRTYPE_PART.match(text, i):
        if m.group(4):
            words.append("--limit-iface-in" if m.group(4) == "limit-in" else "--limit-iface-out")
        else:
            words += [*_neg(m.group(2)), f"--{m.group(1)}-type", m.group(3)]
        i = m.end()
    yield _Frag("addrtype", tuple(words)), i


_SET = re.compile(r"(?:(!)\s*)?match-set\s+(\S+)\s+((?:src|dst)(?:,(?:src|dst))*)(?=\s|$)")
_SET_PART = re.compile(r"\s+(?:(return-nomatch)|!\s+(update-counters|update-subcounters)"
                       r"|(!\s+)?((?:packets|bytes)-(?:eq|lt|gt))\s+(\d+))(?=\s|$)")


@_item
def _set(text: str, pos: int) -> Candidates:
    m = _SET.match(text, pos)
    if not m:
        return
    words = [*_neg(m.group(1)), "--match-set", m.group(2), m.group(3)]
    i = m.end()
    while p := _SET_PART.match(text, i):
        if p.group(1):
            words.append("--return-nomatch")
        elif p.group(2):
            words += ["!", "--" + p.group(2)]
        else:
            words += [*_neg(p.group(3)), "--" + p.group(4), p.group(5)]
        i = p.end()
    yield _Frag("set", tuple(words)), i


_IPRANGE = re.compile(r"(source|destination) IP range\s+(?:(!)\s*)?(\d+\.\d+\.\d+\.\d+-\d+\.\d+\.\d+\.\d+)(?=\s|$)")


@_item
def _iprange(text: str, pos: int) -> Candidates:
    m = _IPRANGE.match(text, pos)
    if m:
        src = m.group(1) == "source"
        yield _Frag("iprange", (*_neg(m.group(2)), "--src-range" if src else "--dst-range", m.group(3)),
                    1 if src else 2), m.end()


_MAC_ITEM = re.compile(r"MAC\s+(?:(!)\s*)?(\S+)(?=\s|$)")


@_item
def _mac(text: str, pos: int) -> Candidates:
    m = _MAC_ITEM.match(text, pos)
    if not m:
        return
    if not _MAC.match(m.group(2)):
        yield _Frag("mac", unknown=f"MAC address {m.group(2)!r} is not readable (hidden in the listing?)"), m.end()
        return
    yield _Frag("mac", (*_neg(m.group(1)), "--mac-source", m.group(2).upper())), m.end()


_LIMIT = re.compile(r"limit:\s+avg\s+(\d+)/(sec|second|min|minute|hour|day)\s+burst\s+(\d+)(?=\s|$)")


@_item
def _limit(text: str, pos: int) -> Candidates:
    m = _LIMIT.match(text, pos)
    if m:
        yield _Frag("limit", ("--limit", f"{m.group(1)}/{m.group(2)}", "--limit-burst", m.group(3))), m.end()


_RECENT = re.compile(r"(?:(!)\s*)?recent:\s+(SET|CHECK|UPDATE|REMOVE)(?:\s+seconds:\s+(\d+))?(\s+reap)?"
                     r"(?:\s+hit_count:\s+(\d+))?(\s+TTL-Match)?\s+name:\s+(\S+)(?:\s+side:\s+(source|dest))?"
                     r"(?:\s+mask:\s+(\d+\.\d+\.\d+\.\d+))?(?=\s|$)")
_RECENT_MODES = {"SET": "--set", "CHECK": "--rcheck", "UPDATE": "--update", "REMOVE": "--remove"}


@_item
def _recent(text: str, pos: int) -> Candidates:
    m = _RECENT.match(text, pos)
    if not m:
        return
    words = [*_neg(m.group(1)), _RECENT_MODES[m.group(2)]]
    if m.group(3):
        words += ["--seconds", m.group(3)]
    if m.group(4):
        words.append("--reap")
    if m.group(5):
        words += ["--hitcount", m.group(5)]
    if m.group(6):
        words.append("--rttl")
    words += ["--name", m.group(7)]
    if m.group(8):
        words.append("--rsource" if m.group(8) == "source" else "--rdest")
    if m.group(9):
        words += ["--mask", m.group(9)]
    yield _Frag("recent", tuple(words)), m.end()


_LENGTH = re.compile(r"length\s+(!?)\s*(\d+(?::\d+)?)(?=\s|$)")
_TTL = re.compile(r"TTL match TTL\s*(==|!=|<|>)\s*(\d+)(?=\s|$)")
_TTL_OPS = {"==": ("--ttl-eq",), "!=": ("!", "--ttl-eq"), "<": ("--ttl-lt",), ">": ("--ttl-gt",)}


@_item
def _length(text: str, pos: int) -> Candidates:
    m = _LENGTH.match(text, pos)
    if m:
        yield _Frag("length", (*_neg(m.group(1)), "--length", m.group(2))), m.end()


@_item
def _ttl(text: str, pos: int) -> Candidates:
    m = _TTL.match(text, pos)
    if m:
        yield _Frag("ttl", (*_TTL_OPS[m.group(1)], m.group(2))), m.end()


_PHYSDEV_PART = re.compile(r"\s+(!\s+)?(?:--physdev-(in|out)\s+(\S+)|--physdev-is-(in|out|bridged))(?=\s|$)")


@_item
def _physdev(text: str, pos: int) -> Candidates:
    if not text.startswith("PHYSDEV match", pos):
        return
    i = pos + len("PHYSDEV match")
    words: list[str] = []
    while m := _PHYSDEV_PART.match(text, i):
        if m.group(2):
            words += [*_neg(m.group(1)), f"--physdev-{m.group(2)}", m.group(3)]
        else:
            words += [*_neg(m.group(1)), f"--physdev-is-{m.group(4)}"]
        i = m.end()
    yield _Frag("physdev", tuple(words)), i


_OWNER = re.compile(r"(?:(!)\s*)?owner (socket exists|UID match|GID match|PID match|SID match|CMD match)"
                    r"(?:(?<=exists)|\s+(\S+))(?=\s|$)")
_OWNER_OPTS = {"socket exists": (1, "--socket-exists"), "UID match": (2, "--uid-owner"),
               "GID match": (3, "--gid-owner")}


@_item
def _owner(text: str, pos: int) -> Candidates:
    if text.startswith("incl. suppl. groups", pos):
        yield _Frag("owner", ("--suppl-groups",), 4), pos + len("incl. suppl. groups")
        return
    m = _OWNER.match(text, pos)
    if not m:
        return
    what, value = m.group(2), m.group(3)
    if what not in _OWNER_OPTS:
        yield _Frag("owner", unknown=f"owner {what} (a 2.6.14-era owner option) is not modelled"), m.end()
        return
    key, opt = _OWNER_OPTS[what]
    if value is None:
        yield _Frag("owner", (*_neg(m.group(1)), opt), key), m.end()
        return
    notes: tuple[str, ...] = ()
    if not re.fullmatch(r"\d+(?:-\d+)?", value):
        if value not in USER_NAMES:
            yield _Frag("owner", key=key, unknown=f"owner {what} {value!r} is a name (listing without -n) that "
                        "only the host's own /etc/passwd or /etc/group resolves"), m.end()
            return
        notes = (f"user/group name {value!r} read as id {USER_NAMES[value]}",)
        value = USER_NAMES[value]
    yield _Frag("owner", (*_neg(m.group(1)), opt, value), key, notes=notes), m.end()


_PKTTYPE = re.compile(r"PKTTYPE\s*(!?)=\s*(\S+)(?=\s|$)")
_STATISTIC = re.compile(r"statistic\s+mode\s+(?:random(\s+!)?\s+probability\s+([0-9.]+)"
                        r"|nth(\s+!)?\s+every\s+(\d+)(?:\s+packet\s+(\d+))?)(?=\s|$)")
_HELPER = re.compile(r"(?:(!)\s*)?helper match\s+(?:(!)\s*)?\"([^\"]*)\"(?=\s|$)")
_DSCP = re.compile(r"DSCP match\s+(!?)\s*(0x[0-9A-Fa-f]+)(?=\s|$)")
_TOS = re.compile(r"tos match\s*(!?)\s*(0x[0-9A-Fa-f]+(?:/0x[0-9A-Fa-f]+)?|[A-Za-z][\w-]*)(?=\s|$)")


@_item
def _pkttype(text: str, pos: int) -> Candidates:
    m = _PKTTYPE.match(text, pos)
    if m:
        yield _Frag("pkttype", (*_neg(m.group(1)), "--pkt-type", m.group(2))), m.end()


@_item
def _statistic(text: str, pos: int) -> Candidates:
    m = _STATISTIC.match(text, pos)
    if not m:
        return
    if m.group(2) is not None:
        words = ("--mode", "random", *_neg(m.group(1)), "--probability", m.group(2))
    else:
        words = ("--mode", "nth", *_neg(m.group(3)), "--every", m.group(4), "--packet", m.group(5) or "0")
    yield _Frag("statistic", words), m.end()


@_item
def _helper(text: str, pos: int) -> Candidates:
    m = _HELPER.match(text, pos)
    if m:
        yield _Frag("helper", (*_neg(m.group(1) or m.group(2)), "--helper", _Text(m.group(3)))), m.end()


@_item
def _dscp(text: str, pos: int) -> Candidates:
    m = _DSCP.match(text, pos)
    if m:
        yield _Frag("dscp", (*_neg(m.group(1)), "--dscp", m.group(2))), m.end()


@_item
def _tos(text: str, pos: int) -> Candidates:
    m = _TOS.match(text, pos)
    if m:
        yield _Frag("tos", (*_neg(m.group(1)), "--tos", m.group(2))), m.end()


@_item
def _goto(text: str, pos: int) -> Candidates:
    if text.startswith("[goto]", pos):
        yield _Frag("[goto]"), pos + len("[goto]")


# ---------------------------------------------------------------- what the targets print
TargetParser = Callable[[str, str, int], Candidates]  # (target name, text, position)
TARGET_PRINTS: dict[str, TargetParser] = {}


def _target(*names: str) -> Callable[[TargetParser], TargetParser]:
    def deco(fn: TargetParser) -> TargetParser:
        for n in names:
            TARGET_PRINTS[n] = fn
        return fn

    return deco


def _tail(rx: re.Pattern[str], text: str, pos: int) -> re.Match[str] | None:
    """The target prints last: its pattern must take the rest of the row."""
    m = rx.match(text, pos)
    return m if m and not text[m.end():].strip() else None


def _flags(text: str | None, allowed: Sequence[str]) -> list[str] | None:
    words = (text or "").split()
    return None if any(w not in allowed for w in words) else ["--" + w for w in words]


def _tgt(name: str, *words: str) -> _Frag:
    return _Frag("", ("-j", name, *words))


_REJECT = re.compile(r"reject-with\s+(\S+)\s*")
_LOG = re.compile(r"LOG\s+(?:flags\s+(\d+)\s+level\s+(\d+)|level\s+(\w+)((?:\s+(?:tcp-sequence|tcp-options|ip-options"
                  r"|uid|macdecode))*)|UNKNOWN level\s+(\d+))(?:\s+prefix\s+(?:\"(.*)\"|`(.*)'))?\s*$", re.S)
_NAT_FLAGS = r"((?:\s*(?:random-fully|random|persistent)(?=\s|$))*)"
_NAT_TO = re.compile(r"to:(\S+)" + _NAT_FLAGS + r"\s*")
_PORTS_OPT = re.compile(r"(?:(?:masq ports:|redir ports)\s+(\d+(?:-\d+)?))?" + _NAT_FLAGS + r"\s*")
_XMARK = re.compile(r"(MARK|CONNMARK)\s+(set|xset|and|or|xor)\s+(0x[0-9a-fA-F]+(?:/0x[0-9a-fA-F]+)?)\s*")
_CONNMARK_SR = re.compile(r"CONNMARK\s+(save|restore)(?:\s+mask\s+(0x[0-9a-fA-F]+)"
                          r"|\s+(nfmask|ctmask)\s+(0x[0-9a-fA-F]+)\s+(ctmask|nfmask)\s+~(0x[0-9a-fA-F]+))?\s*")
_CT = re.compile(r"CT(\s+notrack)?(?:\s+helper\s+(\S+))?(?:\s+timeout\s+(\S+))?(?:\s+ctevents\s+(\S+))?"
                 r"(?:\s+expevents\s+(\S+))?(?:\s+(zone|zone-orig|zone-reply)\s+(\d+))?\s*")
_TCPMSS = re.compile(r"TCPMSS\s+(?:(clamp to PMTU)|set\s+(\d+))\s*")
_NFLOG_PART = re.compile(r"\s*nflog-(prefix|group|size|range|threshold)\s+(\"(?:[^\"\\]|\\.)*\"|\S+)")
_NFQUEUE = re.compile(r"NFQUEUE\s+(?:num\s+(\d+)|balance\s+(\d+:\d+))(\s+bypass)?(\s+cpu-fanout)?\s*")
_TOS_T = re.compile(r"TOS\s+(set|and|or|xor)\s*(0x[0-9a-fA-F]+(?:/0x[0-9a-fA-F]+)?|[A-Za-z][\w-]*)\s*")
_DSCP_T = re.compile(r"DSCP\s+set\s+(0x[0-9a-fA-F]+)\s*")
_TTL_T = re.compile(r"TTL\s+(set to|decrement by|increment by)\s+(\d+)\s*")
_CLASSIFY = re.compile(r"CLASSIFY\s+set\s+([0-9a-fA-F]+:[0-9a-fA-F]+)\s*")
_SET_T = re.compile(r"(?:\s*(add|del)-set\s+(\S+)\s+((?:src|dst)(?:,(?:src|dst))*))+((?:\s+exist)?)"
                    r"(?:\s+timeout\s+(\d+))?\s*")


@_target("REJECT")
def _reject(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_REJECT, text, pos):
        yield _tgt("REJECT", "--reject-with", m.group(1)), len(text)


@_target("LOG")
def _log(name: str, text: str, pos: int) -> Candidates:
    """``LOG flags 47 level 7 prefix "x"`` (-n) or ``LOG level debug uid prefix "x"``; 1.4 quoted `x'."""
    m = _tail(_LOG, text, pos)
    if not m:
        return
    words: list[str] = []
    prefix = m.group(6) if m.group(6) is not None else m.group(7)
    if prefix:
        words += ["--log-prefix", _Text(prefix)]
    if m.group(1) is not None:
        bits, level = int(m.group(1)), int(m.group(2))
        if bits & ~sum(b for b, _, _ in LOG_FLAGS):
            return
        flags = [opt for bit, opt, _ in LOG_FLAGS if bits & bit]
    elif m.group(3) is not None:
        if m.group(3).lower() not in LEVELS:
            return
        level = LEVELS[m.group(3).lower()]
        named = (m.group(4) or "").split()
        flags = [opt for _, opt, word in LOG_FLAGS if word in named]
    else:
        level = int(m.group(5))
        flags = []
    if level != 4:
        words += ["--log-level", str(level)]
    yield _tgt("LOG", *words, *flags), len(text)


@_target("DNAT", "SNAT")
def _nat(name: str, text: str, pos: int) -> Candidates:
    m = _tail(_NAT_TO, text, pos)
    if not m:
        return
    flags = _flags(m.group(2), ("random", "random-fully", "persistent"))
    if flags is not None:
        yield _tgt(name, "--to-destination" if name == "DNAT" else "--to-source", m.group(1), *flags), len(text)


@_target("MASQUERADE", "REDIRECT")
def _nat_ports(name: str, text: str, pos: int) -> Candidates:
    m = _tail(_PORTS_OPT, text, pos)
    if not m:
        return
    if m.group(1) is not None and not text.startswith("masq" if name == "MASQUERADE" else "redir", _ws(text, pos)):
        return
    flags = _flags(m.group(2), ("random", "random-fully"))
    if flags is not None:
        yield _tgt(name, *(("--to-ports", m.group(1)) if m.group(1) else ()), *flags), len(text)


@_target("MARK", "CONNMARK")
def _xmark(name: str, text: str, pos: int) -> Candidates:
    m = _tail(_XMARK, text, pos)
    if m and m.group(1) == name:
        op, value = m.group(2), m.group(3)
        if op == "set":
            yield _tgt(name, "--set-mark", value), len(text)
        elif op == "xset":
            yield _tgt(name, "--set-xmark", value), len(text)
        elif "/" not in value:
            yield _tgt(name, f"--{op}-mark", value), len(text)
        return
    m = _tail(_CONNMARK_SR, text, pos) if name == "CONNMARK" else None
    if m:
        words = ["--save-mark" if m.group(1) == "save" else "--restore-mark"]
        if m.group(2):
            words += ["--mask", m.group(2)]
        elif m.group(3):
            words += [f"--{m.group(3)}", m.group(4), f"--{m.group(5)}", m.group(6)]
        yield _tgt(name, *words), len(text)


@_target("CT")
def _ct(name: str, text: str, pos: int) -> Candidates:
    if text[pos:].strip() == "NOTRACK":
        yield _tgt("NOTRACK"), len(text)
        return
    m = _tail(_CT, text, pos)
    if not m:
        return
    words: list[str] = []
    if m.group(1):
        words.append("--notrack")
    for group, opt in ((2, "--helper"), (3, "--timeout"), (4, "--ctevents"), (5, "--expevents")):
        if m.group(group):
            words += [opt, m.group(group)]
    if m.group(6):
        words += ["--" + m.group(6), m.group(7)]
    yield _tgt("CT", *words), len(text)


@_target("TCPMSS")
def _tcpmss(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_TCPMSS, text, pos):
        yield _tgt("TCPMSS", *(("--clamp-mss-to-pmtu",) if m.group(1) else ("--set-mss", m.group(2)))), len(text)


@_target("NFLOG")
def _nflog(name: str, text: str, pos: int) -> Candidates:
    words: list[str] = []
    i = pos
    while m := _NFLOG_PART.match(text, i):
        value = m.group(2)
        if value.startswith('"'):
            value = _Text(re.sub(r"\\(.)", r"\1", value[1:-1]))
        words += ["--nflog-" + m.group(1), value]
        i = m.end()
    if not text[i:].strip():
        yield _tgt("NFLOG", *words), len(text)


@_target("NFQUEUE")
def _nfqueue(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_NFQUEUE, text, pos):
        words = ["--queue-num", m.group(1)] if m.group(1) else ["--queue-balance", m.group(2)]
        words += ["--queue-bypass"] if m.group(3) else []
        words += ["--queue-cpu-fanout"] if m.group(4) else []
        yield _tgt("NFQUEUE", *words), len(text)


@_target("TOS")
def _tos_target(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_TOS_T, text, pos):
        yield _tgt("TOS", f"--{m.group(1)}-tos", m.group(2)), len(text)


@_target("DSCP")
def _dscp_target(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_DSCP_T, text, pos):
        yield _tgt("DSCP", "--set-dscp", m.group(1)), len(text)


@_target("TTL")
def _ttl_target(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_TTL_T, text, pos):
        opt = {"set to": "--ttl-set", "decrement by": "--ttl-dec", "increment by": "--ttl-inc"}[m.group(1)]
        yield _tgt("TTL", opt, m.group(2)), len(text)


@_target("CLASSIFY")
def _classify(name: str, text: str, pos: int) -> Candidates:
    if m := _tail(_CLASSIFY, text, pos):
        yield _tgt("CLASSIFY", "--set-class", m.group(1)), len(text)


@_target("CHECKSUM")
def _checksum(name: str, text: str, pos: int) -> Candidates:
    if text[pos:].strip() == "CHECKSUM fill":
        yield _tgt("CHECKSUM", "--checksum-fill"), len(text)


@_target("SET")
def _set_target(name: str, text: str, pos: int) -> Candidates:
    words: list[str] = []
    i = pos
    while m := re.compile(r"\s*(add|del)-set\s+(\S+)\s+((?:src|dst)(?:,(?:src|dst))*)(?=\s|$)").match(text, i):
        words += [f"--{m.group(1)}-set", m.group(2), m.group(3)]
        i = m.end()
    m2 = re.compile(r"(\s+exist)?(?:\s+timeout\s+(\d+))?\s*$").match(text, i)
    if words and m2:
        words += ["--exist"] if m2.group(1) else []
        words += ["--timeout", m2.group(2)] if m2.group(2) else []
        yield _tgt("SET", *words), len(text)


@_target("TRACE", "NOTRACK")
def _silent(name: str, text: str, pos: int) -> Candidates:
    if not text[pos:].strip():
        yield _tgt(name), len(text)


def _read_column(text: str, target: str | None) -> list[_Frag] | None:
    """The matches' items, then the target's print taking the rest; None when no reading fits."""
    tail = TARGET_PRINTS.get(target) if target else None
    failed: set[int] = set()

    def walk(pos: int) -> list[_Frag] | None:
        pos = _ws(text, pos)
        if pos in failed:
            return None
        if tail is not None and target:
            for frag, _end in tail(target, text, pos):
                return [frag]
        elif pos == len(text):
            return []
        for item in ITEMS:
            for frag, end in item(text, pos):
                if end == pos or (end < len(text) and not text[end].isspace()):
                    continue
                rest = walk(end)
                if rest is not None:
                    return [frag, *rest]
        failed.add(pos)
        return None

    return walk(0)


# ---------------------------------------------------------------- one row -> iptables-save options
@dataclass(slots=True)
class _Rebuilt:
    words: list[str]  # after "-A CHAIN"
    unknown_at: list[tuple[int, str]]  # (index in the rule's matches, reason): UnparsedRule stands there
    unknown_last: list[str]  # reasons for tests of the IP header part (interfaces, names): appended
    whole: str = ""  # the row's matches could not be read at all: the rule keeps only an UnparsedRule
    lost_target: str = ""  # the target could not be rebuilt: the rule has none
    counters: tuple[int, int] | None = None


def _count(text: str) -> int | None:
    m = _COUNT.match(text)
    return int(m.group(1)) if m and not m.group(2) else None


def _rebuild(row: _Row, chains: set[str], notes: _Notes, anyname: str = "*") -> _Rebuilt:
    out = _Rebuilt([], [], [])
    line = row.line
    if row.counters is not None:
        pkts, byts = _count(row.counters[0]), _count(row.counters[1])
        out.counters = (pkts, byts) if pkts is not None and byts is not None else None
    # -- the ip header part
    neg, proto = (("!",), row.proto[1:]) if row.proto.startswith("!") else ((), row.proto)
    number = int(proto) if proto.isdigit() and int(proto) <= 255 else PROTOCOLS.get(proto.lower())
    if number is not None:
        if number or neg:
            out.words += [*neg, "-p", proto_name(number)]
    else:
        out.unknown_last.append(f"protocol {proto!r} is a name this machine does not know")
        notes.add(line, f"protocol name {proto!r} is not in /etc/protocols: the rule's protocol test is kept as "
                  "uncertain")
    if row.opt != "--":
        out.words += ["!", "-f"] if row.opt.startswith("!") else ["-f"]
    if row.iniface is None:
        out.unknown_last.append(NO_IFACE_REASON)
    else:
        for flag, value in (("-i", row.iniface), ("-o", row.outiface or "*")):
            neg, name = (("!",), value[1:]) if value.startswith("!") else ((), value)
            if name == anyname or (name == "+" and not neg):
                continue
            out.words += [*neg, flag, name]
    for flag, value in (("-s", row.src), ("-d", row.dst)):
        neg, name = (("!",), value[1:]) if value.startswith("!") else ((), value)
        if name == "anywhere":
            name = "0.0.0.0/0"
        if ":" in name:
            raise UnsupportedFeature(notes.source, line, f"{name!r} is an IPv6 address: this looks like an "
                                     "ip6tables listing, and IPv6 is not modelled yet", row.raw.strip())
        addr, why = _address(name)
        if addr is None:
            what = "source" if flag == "-s" else "destination"
            out.unknown_last.append(f"{what} {name!r} is a host name (listing without -n)")
            notes.add(line, f"{what} {name!r} is a host or network name (listing without -n) that only the host "
                      "resolves: the rule's address test is kept as uncertain")
            continue
        for n in why:
            notes.add(line, n)
        if addr != "0.0.0.0/0" or neg:
            out.words += [*neg, flag, addr]
    # -- the match column and the target's own text
    target = row.target
    extension = target not in STANDARD and target not in chains and target != ""
    frags = _read_column(row.rest, target if extension and target in TARGET_PRINTS else None)
    if frags is None:
        _whole(row, out, chains, notes)
        return out
    goto = any(f.module == "[goto]" for f in frags)
    frags = [f for f in frags if f.module != "[goto]"]
    target_words: list[str] = []
    if frags and frags[-1].module == "":
        target_words = list(frags.pop().words)
    elif target in STANDARD:
        target_words = ["-j", target]
    elif target in chains:
        target_words = ["-g" if goto else "-j", target]
    elif target:
        out.lost_target = target
        notes.add(line, f"target {target!r} is neither a chain of this listing nor a target pktpath rebuilds: the "
                  "rule is kept as uncertain, without its target (its effect is lost)")
    _emit(frags, out, line, notes)
    if out.lost_target:
        out.unknown_last.append(f"target {target!r} is not rebuilt from the listing")
    out.words += target_words
    return out


def _emit(frags: Sequence[_Frag], out: _Rebuilt, line: int, notes: _Notes) -> None:
    """-m words for each fragment; consecutive parts of one extension in print order are one match."""
    groups: list[tuple[str, list[str], int]] = []  # module, words, last key
    for frag in frags:
        for n in frag.notes:
            notes.add(line, n)
        if frag.unknown:
            groups.append(("", [frag.unknown], 0))
            notes.add(line, f"{frag.unknown}: that test is kept as uncertain")
            continue
        if groups and frag.key and groups[-1][0] == frag.module and frag.key > groups[-1][2]:
            groups[-1][1].extend(frag.words)
            groups[-1] = (frag.module, groups[-1][1], frag.key)
            continue
        groups.append((frag.module, list(frag.words), frag.key))
    index = 0
    for module, words, _key in groups:
        if module == "":
            out.unknown_at.append((index, words[0]))
        else:
            out.words += ["-m", module, *words]
        index += 1


def _salvage(target: str, text: str) -> list[str] | None:
    """The target's own text at the end of a column whose matches are not understood."""
    tail = TARGET_PRINTS.get(target)
    if tail is None:
        return None
    for start in [0, *(m.end() for m in re.finditer(r"\s+", text))]:
        for frag, _end in tail(target, text, start):
            return list(frag.words)
    return None


def _whole(row: _Row, out: _Rebuilt, chains: set[str], notes: _Notes) -> None:
    """The match column (or the target's text) is not understood: keep the verdict or jump only."""
    goto = row.rest.startswith("[goto]")
    out.whole = f"iptables -L text {row.rest!r} not understood"
    target = row.target
    salvaged = _salvage(target, row.rest) if target not in STANDARD and target not in chains else None
    if salvaged is not None:
        out.words += salvaged
        kept = f"with its target {target} (read from its own text)"
    elif target in STANDARD:
        out.words += ["-j", target]
        kept = f"with its target {target}"
    elif target in chains:
        out.words += ["-g" if goto else "-j", target]
        kept = f"with its {'goto' if goto else 'jump'} to {target}"
    elif target:
        out.lost_target = target
        kept = f"without its target {target} (its effect is lost)"
        out.unknown_last.append(f"target {target!r} is not rebuilt from the listing")
    else:
        kept = "(it has no target)"
    notes.add(row.line, f"the text {row.rest!r} is not understood: the rule is kept as uncertain (both outcomes "
              f"followed), {kept}")


# ---------------------------------------------------------------- the whole listing
def parse(text: str, source: str = "iptables-L.txt", table: str | None = None) -> tuple[Ruleset, list[str]]:
    """Rebuild the rules of an ``iptables -L`` listing; returns the ruleset and the notes on
    what the listing did not carry (and what was assumed instead).  Raises ParseError naming
    ``source:line`` of the listing."""
    notes = _Notes(source)
    blocks = _scan(text, source, notes)
    if not blocks:
        raise ParseError(source, 1, "no 'Chain NAME (...)' line: not an iptables -L listing")
    if table is not None and table not in BUILTIN_CHAINS:
        raise ParseError(source, 0, f"unknown table {table!r}, expected one of " + ", ".join(BUILTIN_CHAINS))
    synth: list[str] = []
    origin: dict[int, tuple[int, str]] = {}  # line of the rebuilt text -> (listing line, listing text)
    rebuilt: dict[int, _Rebuilt] = {}
    used: set[str] = set()
    rounded = False

    def put(line: str, where: int, raw: str) -> None:
        synth.append(line)
        origin[len(synth)] = (where, raw)

    for block in blocks:
        name = _block_table(block, table, used, notes)
        if name in used:
            notes.add(block.line, f"table {name} is listed again here: this later listing replaces the earlier one")
        used.add(name)
        chains = {c.name for c in block.chains if c.policy is None}
        _check_block(block, name, chains, notes)
        put(f"*{name}", block.prompt_line or block.line, block.chains[0].raw)
        for chain in block.chains:
            if chain.policy is not None:
                if chain.name not in BUILTIN_CHAINS[name]:
                    raise ParseError(source, chain.line, f"chain {chain.name} has a policy but is not a built-in "
                                     f"chain of table {name}", chain.raw)
                pc = chain.policy_counters
                p, b = (_count(pc[0]), _count(pc[1])) if pc else (0, 0)
                put(f":{chain.name} {chain.policy} [{p or 0}:{b or 0}]", chain.line, chain.raw)
            else:
                put(f":{chain.name} - [0:0]", chain.line, chain.raw)
        no_v = 0
        ifaces = {i for c in block.chains for r in c.rows for i in (r.iniface, r.outiface)}
        anyname = "any" if "any" in ifaces and "*" not in ifaces else "*"  # -n prints "*", else "any"
        for chain in block.chains:
            for row in chain.rows:
                r = _rebuild(row, chains, notes, anyname)
                rounded = rounded or (row.counters is not None and r.counters is None)
                no_v += NO_IFACE_REASON in r.unknown_last
                rule = " ".join(["-A", chain.name, *(_quote(w) for w in r.words)])
                put(f"[{r.counters[0]}:{r.counters[1]}] {rule}" if r.counters else rule, row.line, row.raw.strip())
                rebuilt[len(synth)] = r
        if no_v:
            hdr = next(c.header for c in block.chains if c.header is not None)
            notes.add(hdr.line if hdr else block.line,
                      f"the listing has no -v: the in/out interfaces of its {no_v} rule(s) are not shown; each keeps "
                      "an uncertain interface test (both outcomes followed)")
        put("COMMIT", block.line, block.chains[0].raw)
    if rounded:
        notes.add(0, "packet and byte counters printed with K/M/G/T (no -x) are rounded: they are not kept")
    try:
        saved = iptables_save.parse("\n".join(synth) + "\n", source, lenient=True)
    except ParseError as e:
        where, raw = origin.get(e.line, (0, ""))
        raise type(e)(source, where, e.msg, raw) from None
    return _map_back(saved, source, origin, rebuilt, notes), notes.render()


def _quote(word: str) -> str:
    if isinstance(word, _Text):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quote_word(word)


def _check_block(block: _Block, table: str, chains: set[str], notes: _Notes) -> None:
    missing = [c for c in BUILTIN_CHAINS[table] if c not in block.builtins()]
    if missing:
        notes.add(block.line, f"built-in chain(s) {', '.join(missing)} of table {table} are not in the listing: "
                  "taken as empty with policy ACCEPT")
    jumps: dict[str, int] = {}
    for chain in block.chains:
        expected = None
        for row in chain.rows:
            if row.target in chains:
                jumps[row.target] = jumps.get(row.target, 0) + 1
            if row.num is not None:
                if expected is not None and row.num != expected:
                    notes.add(row.line, f"rule number {row.num} follows {expected - 1}: rows of chain {chain.name} "
                              "are missing from the listing")
                expected = row.num + 1
    for chain in block.chains:
        if chain.refs is not None and jumps.get(chain.name, 0) < chain.refs:
            notes.add(chain.line, f"chain {chain.name} has {chain.refs} reference(s) but the listing jumps to it "
                      f"{jumps.get(chain.name, 0)} time(s): the rules that jump to it are not all listed")


def _map_back(saved: Ruleset, source: str, origin: dict[int, tuple[int, str]], rebuilt: dict[int, _Rebuilt],
              notes: _Notes) -> Ruleset:
    tables: dict[str, Table] = {}
    for tname, tbl in saved.tables.items():
        chains: dict[str, Chain] = {}
        for cname, chain in tbl.chains.items():
            rules = tuple(_fix_rule(r, source, origin, rebuilt, notes) for r in chain.rules)
            chains[cname] = Chain(chain.name, chain.policy, rules, _loc(chain.origin, source, origin))
        tables[tname] = Table(tbl.name, chains, _loc(tbl.origin, source, origin))
    return Ruleset(tables, source, None)


def _loc(loc: SourceLoc | None, source: str, origin: dict[int, tuple[int, str]]) -> SourceLoc | None:
    if loc is None or loc.line not in origin:
        return loc
    line, raw = origin[loc.line]
    return SourceLoc(source, line, raw)


def _fix_rule(rule: Rule, source: str, origin: dict[int, tuple[int, str]], rebuilt: dict[int, _Rebuilt],
              notes: _Notes) -> Rule:
    synth_line = rule.origin.line if rule.origin else 0
    loc = _loc(rule.origin, source, origin)
    r = rebuilt.get(synth_line)
    if r is None:
        return replace(rule, origin=loc)
    matches: list[Match] = list(rule.matches)
    refused = [m for m in matches if isinstance(m, UnparsedRule)]
    if refused:
        # iptables_save refused the rebuilt options (kept as uncertain by its lenient mode)
        notes.add(loc.line if loc else 0, f"the rebuilt rule {rule.text!r} is refused ({refused[0].reason}): it is "
                  "kept as uncertain")
    elif r.whole:  # one UnparsedRule stands for everything the row tests beyond its addresses
        matches = [UnparsedRule("; ".join([r.whole, *r.unknown_last]))]
    else:
        for index, reason in r.unknown_at:
            matches.insert(min(index, len(matches)), UnparsedRule(reason))
        matches.extend(UnparsedRule(reason) for reason in r.unknown_last)
    return replace(rule, matches=tuple(matches), origin=loc)
