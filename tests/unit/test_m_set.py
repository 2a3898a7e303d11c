"""``-m set`` / ``-j SET`` and the kernel lookup they rely on (pktpath.model.ipset.probe).

PROBE_CASES is the semantic table: one named case per kernel behaviour, each a set in
``ipset restore`` form, the rule's src/dst flags, a packet and the expected ip_set_test()
result.  The kernel-checkable ones are repeated against Linux in tests/kernel/test_set_kernel.py.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from pktpath.engine.host import Host
from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.errors import ParseError, SnapshotInconsistent
from pktpath.ext.m_set import SetMatch
from pktpath.ext.t_set import SetTarget
from pktpath.model import ipset as ipset_model
from pktpath.model.ipset import Dir, Family, IpSet, PacketView, packet_element, probe, xt_reference_error
from pktpath.model.xtables import Ruleset, Uncertain
from pktpath.parse import ipset_save, iptables_save

S, D = Dir.SRC, Dir.DST


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def dirs(text: str) -> tuple[Dir, ...]:
    return tuple(Dir(d) for d in text.split(","))


def pv(src: str = "10.0.0.1", dst: str = "10.9.9.9", proto: int = 6, **kw: Any) -> PacketView:
    kw.setdefault("sport", 40000 if proto in (6, 17, 132, 136) else None)
    kw.setdefault("dport", 80 if proto in (6, 17, 132, 136) else None)
    return PacketView(ip(src), ip(dst), proto, **kw)


@dataclass(frozen=True)
class Case:
    sets: str
    name: str
    flags: str
    packet: PacketView
    expected: bool
    return_nomatch: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


MAC1 = 0x020000000001
MAC2 = 0x020000000002

PROBE_CASES: dict[str, Case] = {
    # ---- hash:ip
    "hash:ip hit": Case("create s hash:ip\nadd s 10.0.0.1", "s", "src", pv(), True),
    "hash:ip miss": Case("create s hash:ip\nadd s 10.0.0.2", "s", "src", pv(), False),
    "hash:ip dst flag": Case("create s hash:ip\nadd s 10.9.9.9", "s", "dst", pv(), True),
    "hash:ip extra flags ignored": Case("create s hash:ip\nadd s 10.0.0.1", "s", "src,dst,dst", pv(), True),
    "hash:ip netmask groups hosts": Case("create s hash:ip netmask 24\nadd s 10.0.0.77", "s", "src",
                                         pv("10.0.0.200"), True),
    "hash:ip netmask other /24": Case("create s hash:ip netmask 24\nadd s 10.0.0.77", "s", "src",
                                      pv("10.0.1.1"), False),
    "hash:ip bitmask": Case("create s hash:ip bitmask 255.255.0.255\nadd s 10.1.2.3", "s", "src",
                            pv("10.1.99.3"), True),
    "hash:ip zero address never": Case("create s hash:ip netmask 8\nadd s 10.0.0.0", "s", "src",
                                       pv("0.1.2.3"), False),
    "hash:ip range entry": Case("create s hash:ip\nadd s 10.0.0.0-10.0.0.3", "s", "src", pv("10.0.0.3"),
                                True),
    "hash:ip cidr entry": Case("create s hash:ip\nadd s 10.0.0.0/30", "s", "src", pv("10.0.0.4"), False),
    "hash:ip inet6 never matches IPv4": Case("create s hash:ip family inet6\nadd s ::ffff:10.0.0.1", "s",
                                             "src", pv(), False),
    # ---- hash:net
    "hash:net longest prefix": Case("create s hash:net\nadd s 10.0.0.0/8\nadd s 10.1.0.0/16 nomatch",
                                    "s", "src", pv("10.1.2.3"), False),
    "hash:net outside nomatch": Case("create s hash:net\nadd s 10.0.0.0/8\nadd s 10.1.0.0/16 nomatch",
                                     "s", "src", pv("10.2.2.3"), True),
    "hash:net more specific inside nomatch": Case(
        "create s hash:net\nadd s 10.1.0.0/16 nomatch\nadd s 10.1.2.0/24", "s", "src", pv("10.1.2.3"), True),
    "hash:net return-nomatch on nomatch": Case(
        "create s hash:net\nadd s 10.0.0.0/8\nadd s 10.1.0.0/16 nomatch", "s", "src", pv("10.1.2.3"), True,
        return_nomatch=True),
    "hash:net return-nomatch on match": Case(
        "create s hash:net\nadd s 10.0.0.0/8\nadd s 10.1.0.0/16 nomatch", "s", "src", pv("10.2.2.3"), False,
        return_nomatch=True),
    "hash:net return-nomatch absent": Case("create s hash:net\nadd s 10.0.0.0/8", "s", "src",
                                           pv("11.0.0.1"), False, return_nomatch=True),
    "hash:net empty set": Case("create s hash:net", "s", "src", pv(), False),
    "hash:net range split": Case("create s hash:net\nadd s 10.0.0.1-10.0.0.6", "s", "src", pv("10.0.0.6"),
                                 True),
    "hash:net range end": Case("create s hash:net\nadd s 10.0.0.1-10.0.0.6", "s", "src", pv("10.0.0.7"),
                               False),
    # ---- ports and protocols (hash:ip,port)
    "ip,port tcp": Case("create s hash:ip,port\nadd s 10.0.0.1,80", "s", "src,dst", pv(), True),
    "ip,port tcp src port": Case("create s hash:ip,port\nadd s 10.0.0.1,40000", "s", "src,src", pv(), True),
    "ip,port udp is not tcp": Case("create s hash:ip,port\nadd s 10.0.0.1,80", "s", "src,dst",
                                   pv(proto=17), False),
    "ip,port udp": Case("create s hash:ip,port\nadd s 10.0.0.1,udp:80", "s", "src,dst", pv(proto=17), True),
    "ip,port sctp": Case("create s hash:ip,port\nadd s 10.0.0.1,sctp:80", "s", "src,dst", pv(proto=132), True),
    "ip,port udplite": Case("create s hash:ip,port\nadd s 10.0.0.1,udplite:80", "s", "src,dst",
                            pv(proto=136), True),
    "ip,port icmp type/code": Case("create s hash:ip,port\nadd s 10.0.0.1,icmp:port-unreachable", "s",
                                   "src,dst", pv(proto=1, icmp_type=3, icmp_code=3), True),
    "ip,port icmp other code": Case("create s hash:ip,port\nadd s 10.0.0.1,icmp:3/3", "s", "src,dst",
                                    pv(proto=1, icmp_type=3, icmp_code=1), False),
    "ip,port icmp ignores src/dst": Case("create s hash:ip,port\nadd s 10.0.0.1,icmp:ping", "s", "src,src",
                                         pv(proto=1, icmp_type=8, icmp_code=0), True),
    "ip,port gre port 0": Case("create s hash:ip,port\nadd s 10.0.0.1,gre:0", "s", "src,dst",
                               pv(proto=47), True),
    "ip,port gre fragment": Case("create s hash:ip,port\nadd s 10.0.0.1,gre:0", "s", "src,dst",
                                 pv(proto=47, fragoff=10), True),
    "ip,port tcp fragment": Case("create s hash:ip,port\nadd s 10.0.0.1,80", "s", "src,dst",
                                 pv(fragoff=10), False),
    "ip,port protocol 0": Case("create s hash:ip,port\nadd s 10.0.0.1,80", "s", "src,dst", pv(proto=0),
                               False),
    "ip,port one flag for two dims": Case("create s hash:ip,port\nadd s 10.0.0.1,80", "s", "src", pv(),
                                          False),
    "ip,port netmask": Case("create s hash:ip,port netmask 24\nadd s 10.0.0.9,80", "s", "src,dst",
                            pv("10.0.0.1"), True),
    "ip,port zero address": Case("create s hash:ip,port netmask 8\nadd s 10.0.0.9,80", "s", "src,dst",
                                 pv("0.0.0.1"), False),
    # ---- other hash types
    "net,port nomatch": Case("create s hash:net,port\nadd s 10.0.0.0/8,tcp:80\n"
                             "add s 10.1.0.0/16,tcp:80 nomatch", "s", "src,dst", pv("10.1.0.1"), False),
    "net,port hit": Case("create s hash:net,port\nadd s 10.0.0.0/8,tcp:80\n"
                         "add s 10.1.0.0/16,tcp:80 nomatch", "s", "src,dst", pv("10.2.0.1"), True),
    "ip,port,ip": Case("create s hash:ip,port,ip\nadd s 10.0.0.1,80,10.9.9.9", "s", "src,dst,dst", pv(), True),
    "ip,port,ip third flag": Case("create s hash:ip,port,ip\nadd s 10.0.0.1,80,10.9.9.9", "s", "src,dst,src",
                                  pv(), False),
    "ip,port,net nomatch host": Case("create s hash:ip,port,net\nadd s 10.0.0.1,80,10.9.0.0/16\n"
                                     "add s 10.0.0.1,80,10.9.9.9 nomatch", "s", "src,dst,dst", pv(), False),
    "ip,port,net net": Case("create s hash:ip,port,net\nadd s 10.0.0.1,80,10.9.0.0/16\n"
                            "add s 10.0.0.1,80,10.9.9.9 nomatch", "s", "src,dst,dst", pv(dst="10.9.1.1"),
                            True),
    "ip,mark": Case("create s hash:ip,mark\nadd s 10.0.0.1,0x10", "s", "src,dst", pv(mark=0x10), True),
    "ip,mark markmask": Case("create s hash:ip,mark markmask 0xf0\nadd s 10.0.0.1,0x10", "s", "src,src",
                             pv(mark=0x1F), True),
    "ip,mark other mark": Case("create s hash:ip,mark\nadd s 10.0.0.1,0x10", "s", "src,dst", pv(mark=0x11),
                               False),
    "net,net nested order": Case("create s hash:net,net\nadd s 10.0.0.0/8,192.168.1.0/24 nomatch\n"
                                 "add s 10.1.0.0/16,192.168.0.0/16", "s", "src,dst",
                                 pv("10.1.2.3", "192.168.1.5"), True),
    "net,net first dim first": Case("create s hash:net,net\nadd s 10.1.0.0/16,192.168.1.0/24 nomatch\n"
                                    "add s 10.0.0.0/8,192.168.1.5", "s", "src,dst",
                                    pv("10.1.2.3", "192.168.1.5"), False),
    "net,port,net zero net": Case("create s hash:net,port,net\nadd s 10.0.0.0/8,udp:53,0.0.0.0/0", "s",
                                  "src,dst,dst", pv(proto=17, dport=53), True),
    "mac src": Case("create s hash:mac\nadd s 02:00:00:00:00:01", "s", "src", pv(mac_src=MAC1), True),
    "mac without Ethernet header": Case("create s hash:mac\nadd s 02:00:00:00:00:01", "s", "src", pv(), False),
    "ip,mac": Case("create s hash:ip,mac\nadd s 10.0.0.1,02:00:00:00:00:01", "s", "src,src",
                   pv(mac_src=MAC1), True),
    "ip,mac dst mac": Case("create s hash:ip,mac\nadd s 10.0.0.1,02:00:00:00:00:01", "s", "src,dst",
                           pv(mac_src=MAC1, mac_dst=MAC2), False),
    # ---- hash:net,iface
    "net,iface in device": Case("create s hash:net,iface\nadd s 10.0.0.0/8,eth0", "s", "src,src",
                                pv(in_dev="eth0"), True),
    "net,iface out device": Case("create s hash:net,iface\nadd s 10.0.0.0/8,eth0", "s", "src,dst",
                                 pv(in_dev="eth1", out_dev="eth0"), True),
    "net,iface no device": Case("create s hash:net,iface\nadd s 10.0.0.0/8,eth0", "s", "src,dst",
                                pv(in_dev="eth0"), False),
    "net,iface other iface stops walk": Case("create s hash:net,iface\nadd s 10.0.0.0/8,eth0\n"
                                             "add s 10.0.0.0/24,eth1", "s", "src,src", pv(in_dev="eth0"), False),
    "net,iface wildcard": Case("create s hash:net,iface\nadd s 10.0.0.0/8,et wildcard", "s", "src,src",
                               pv(in_dev="eth0"), True),
    "net,iface physdev never via iptables": Case("create s hash:net,iface\nadd s 10.0.0.0/8,physdev:eth0",
                                                 "s", "src,src", pv(in_dev="eth0"), False),
    "net,iface zero net": Case("create s hash:net,iface\nadd s 0.0.0.0/0,eth0", "s", "src,src",
                               pv(in_dev="eth0"), True),
    # ---- bitmaps
    "bitmap:ip": Case("create s bitmap:ip range 10.0.0.0/24\nadd s 10.0.0.1", "s", "src", pv(), True),
    "bitmap:ip out of range": Case("create s bitmap:ip range 10.0.0.0/24\nadd s 10.0.0.1", "s", "dst", pv(),
                                   False),
    "bitmap:ip netmask block": Case("create s bitmap:ip range 10.0.0.0/24 netmask 30\nadd s 10.0.0.5", "s",
                                    "src", pv("10.0.0.7"), True),
    "bitmap:ip,mac equal": Case("create s bitmap:ip,mac range 10.0.0.0/24\nadd s 10.0.0.1,02:00:00:00:00:01",
                                "s", "src,src", pv(mac_src=MAC1), True),
    "bitmap:ip,mac differs": Case("create s bitmap:ip,mac range 10.0.0.0/24\n"
                                  "add s 10.0.0.1,02:00:00:00:00:01", "s", "src,src", pv(mac_src=MAC2), False),
    "bitmap:ip,mac unfilled": Case("create s bitmap:ip,mac range 10.0.0.0/24\nadd s 10.0.0.1", "s",
                                   "src,src", pv(mac_src=MAC2), True),
    "bitmap:ip,mac needs header": Case("create s bitmap:ip,mac range 10.0.0.0/24\nadd s 10.0.0.1", "s",
                                       "src,src", pv(), False),
    "bitmap:port tcp": Case("create s bitmap:port range 1-1024\nadd s 80", "s", "dst", pv(), True),
    "bitmap:port udp": Case("create s bitmap:port range 1-1024\nadd s 80", "s", "dst", pv(proto=17), True),
    "bitmap:port not sctp": Case("create s bitmap:port range 1-1024\nadd s 80", "s", "dst", pv(proto=132),
                                 False),
    "bitmap:port out of range": Case("create s bitmap:port range 1-1024\nadd s 80", "s", "src", pv(), False),
    # ---- list:set
    "list:set first member": Case("create a hash:ip\nadd a 10.0.0.1\ncreate b hash:net\n"
                                  "create l list:set\nadd l b\nadd l a", "l", "src", pv(), True),
    "list:set skips inet6 member": Case("create a hash:ip family inet6\ncreate b hash:net\nadd b 10.0.0.0/8\n"
                                        "create l list:set\nadd l a\nadd l b", "l", "src", pv(), True),
    "list:set nomatch member then match": Case(
        "create a hash:net\nadd a 10.0.0.0/8\nadd a 10.0.0.0/24 nomatch\ncreate b hash:ip\nadd b 10.0.0.1\n"
        "create l list:set\nadd l a\nadd l b", "l", "src", pv(), True),
    "list:set return-nomatch per member": Case(
        "create a hash:net\nadd a 10.0.0.0/8\nadd a 10.0.0.0/24 nomatch\ncreate l list:set\nadd l a", "l",
        "src", pv(), True, return_nomatch=True),
    "list:set dims per member": Case("create a hash:ip,port\nadd a 10.0.0.1,80\ncreate l list:set\nadd l a",
                                     "l", "src", pv(), False),
    "list:set empty": Case("create l list:set", "l", "src", pv(), False),
}


@pytest.mark.parametrize("case", PROBE_CASES.values(), ids=PROBE_CASES.keys())
def test_probe(case: Case) -> None:
    sets = ipset_save.parse(case.sets, "case.restore")
    got = ipset_model.test(sets[case.name], sets, case.packet, dirs(case.flags), return_nomatch=case.return_nomatch)
    assert got is case.expected


def test_probe_reports_the_deciding_entry() -> None:
    sets = ipset_save.parse("create s hash:net skbinfo\nadd s 10.0.0.0/8 skbmark 0x5\n"
                            "add s 10.1.0.0/16 nomatch\n", "x")
    p = probe(sets["s"], sets, pv("10.1.0.1"), (S,))
    assert not p.matched and p.entry is not None and p.entry.nomatch
    assert [e.elem for e in p.counted] == [e.elem for e in reversed(sets["s"].entries)]
    p = probe(sets["s"], sets, pv("10.2.0.1"), (S,))
    assert p.matched and p.skbinfo is not None and p.skbinfo.mark == 5 and p.skbinfo.mask == 0xFFFFFFFF
    assert probe(sets["s"], sets, pv(), ()).reason.startswith("hash:net has 1 dimension")


def test_list_set_skbinfo_comes_from_the_member_unless_the_list_has_it() -> None:
    text = ("create a hash:ip skbinfo\nadd a 10.0.0.1 skbmark 0x1\n"
            "create l list:set\nadd l a\ncreate m list:set skbinfo\nadd m a skbmark 0x2\n")
    sets = ipset_save.parse(text, "x")
    assert probe(sets["l"], sets, pv(), (S,)).skbinfo.mark == 1  # type: ignore[union-attr]
    assert probe(sets["m"], sets, pv(), (S,)).skbinfo.mark == 2  # type: ignore[union-attr]


ELEMENT_CASES = {
    "hash:ip masked": ("create s hash:ip netmask 24", "src", pv("10.1.2.3"), "10.1.2.0"),
    "hash:net most specific length": ("create s hash:net\nadd s 10.0.0.0/8\nadd s 10.0.0.0/16", "src",
                                      pv("10.7.8.9"), "10.7.0.0/16"),
    "hash:net empty is host": ("create s hash:net", "src", pv("10.7.8.9"), "10.7.8.9"),
    "hash:ip,port gre": ("create s hash:ip,port", "src,dst", pv(proto=47), "10.0.0.1,gre:0"),
    "hash:ip,port icmp": ("create s hash:ip,port", "src,dst", pv(proto=1, icmp_type=8, icmp_code=0),
                          "10.0.0.1,icmp:echo-request"),
    "net,iface in device": ("create s hash:net,iface", "src,src", pv(in_dev="eth0"), "10.0.0.1,eth0"),
    "bitmap:ip netmask": ("create s bitmap:ip range 10.0.0.0/24 netmask 30", "src", pv("10.0.0.7"), "10.0.0.4"),
    "ip,mark": ("create s hash:ip,mark markmask 0xff", "src,src", pv(mark=0x1234), "10.0.0.1,0x00000034"),
}


@pytest.mark.parametrize(("text", "flags", "packet", "expected"), ELEMENT_CASES.values(),
                         ids=ELEMENT_CASES.keys())
def test_packet_element(text: str, flags: str, packet: PacketView, expected: str) -> None:
    s = ipset_save.parse(text, "x")["s"]
    elem = packet_element(s, packet, dirs(flags))
    assert not isinstance(elem, str), elem
    assert ipset_save.render_elem(s, elem) == expected


def test_packet_element_refusals() -> None:
    sets = ipset_save.parse("create p bitmap:port range 1-10\ncreate l list:set\ncreate i hash:ip,port", "x")
    assert packet_element(sets["p"], pv(), (D,)) == "not a TCP/UDP port inside the bitmap's range"
    assert "first member" in str(packet_element(sets["l"], pv(), (S,)))
    assert "2 dimension" in str(packet_element(sets["i"], pv(), (S,)))


def test_xt_reference_error() -> None:
    sets = ipset_save.parse("create a hash:ip family inet6\ncreate b hash:mac\ncreate c hash:ip", "x")
    assert xt_reference_error(sets, "zz") == "Set zz doesn't exist."
    assert xt_reference_error(sets, "a") == "The protocol family of set a is IPv6, which is not applicable."
    assert xt_reference_error(sets, "b") is None and xt_reference_error(sets, "c") is None
    assert sets["b"].family is Family.UNSPEC


# ------------------------------------------------------------------ the match extension
def rules(text: str, table: str = "filter") -> Ruleset:
    chains = {"filter": ("INPUT", "FORWARD", "OUTPUT"),
              "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")}[table]
    head = f"*{table}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains)
    return iptables_save.parse(head + text + "\nCOMMIT\n", "rules")


RENDER_CASES = {
    "plain": "-m set --match-set s src",
    "inverted": "-m set ! --match-set s dst,src",
    "return-nomatch": "-m set --match-set s src --return-nomatch",
    "no counter update": "-m set --match-set s src ! --update-counters",
    "no subcounter update": "-m set --match-set s src ! --update-subcounters",
    "packets-gt": "-m set --match-set s src --packets-gt 5",
    "packets-ne": "-m set --match-set s src ! --packets-eq 5",
    "all options": "-m set --match-set s src,dst,src --return-nomatch ! --update-counters "
                   "! --update-subcounters --packets-gt 1 --bytes-lt 9",
}


@pytest.mark.parametrize("text", RENDER_CASES.values(), ids=RENDER_CASES.keys())
def test_match_renders_as_iptables_save(text: str) -> None:
    rule = rules(f"-A INPUT {text}").tables["filter"].chains["INPUT"].rules[0]
    assert " ".join(m.render() for m in rule.matches) == text


CANONICAL_CASES = {
    "--set alias": ("-m set --set s src", "-m set --match-set s src"),
    "flag prefixes": ("-m set --match-set s srcxx,dstyy", "-m set --match-set s src,dst"),
    "update-counters is a no-op": ("-m set --match-set s src --update-counters", "-m set --match-set s src"),
    "hex counter": ("-m set --match-set s src --packets-eq 0x10", "-m set --match-set s src --packets-eq 16"),
    "option order": ("-m set --match-set s src --packets-lt 5 ! --bytes-eq 7 --return-nomatch "
                     "! --update-subcounters",
                     "-m set --match-set s src --return-nomatch ! --update-subcounters --packets-lt 5 "
                     "! --bytes-eq 7"),
}


@pytest.mark.parametrize(("given", "saved"), CANONICAL_CASES.values(), ids=CANONICAL_CASES.keys())
def test_match_canonical_form(given: str, saved: str) -> None:
    rule = rules(f"-A INPUT {given}").tables["filter"].chains["INPUT"].rules[0]
    assert " ".join(m.render() for m in rule.matches) == saved


MATCH_ERRORS = {
    "no set": ("-m set --return-nomatch", "You must specify `--match-set' with proper arguments"),
    "twice": ("-m set --match-set s src --match-set s dst", "--match-set can be specified only once"),
    "bad flag": ("-m set --match-set s foo", "You must spefify (the comma separated list of) 'src' or 'dst'."),
    "seven flags": ("-m set --match-set s src,dst,src,dst,src,dst,src", "Can't be more src/dst options than 6."),
    "flags look like an option": ("-m set --match-set s --return-nomatch", "--match-set requires two args."),
    "inverted gt": ("-m set --match-set s src ! --packets-gt 5", "--packets-gt option cannot be inverted"),
    "two packet conditions": ("-m set --match-set s src --packets-gt 5 --packets-lt 3",
                              "only one of the --packets-[eq|lt|gt] is allowed"),
    "inverted return-nomatch": ("-m set --match-set s src ! --return-nomatch",
                                "--return-nomatch flag cannot be inverted"),
    "bad counter": ("-m set --match-set s src --bytes-eq x", "Cannot parse x as a counter value"),
    "long name": ("-m set --match-set " + "n" * 32 + " src", "too long, max 31 characters."),
}


@pytest.mark.parametrize(("text", "message"), MATCH_ERRORS.values(), ids=MATCH_ERRORS.keys())
def test_match_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        rules(f"-A INPUT {text}")
    assert message in info.value.msg and info.value.line == 5


def evaluate(match_text: str, sets_text: str, skb: Skb, hook: Hook = Hook.PREROUTING,
             in_dev: str | None = "eth0", out_dev: str | None = None) -> object:
    rs = rules(f"-A PREROUTING {match_text}", "mangle")
    m = rs.tables["mangle"].chains["PREROUTING"].rules[0].matches[0]
    host = Host(rs, ipsets=ipset_save.parse(sets_text, "sets"))
    return m.matches(skb, XtParams(hook, "mangle", in_dev, out_dev, host))


def skb(src: str = "10.0.0.1", dst: str = "10.9.9.9", **kw: Any) -> Skb:
    kw.setdefault("proto", 6)
    kw.setdefault("sport", 40000)
    kw.setdefault("dport", 80)
    return Skb(ip(src), ip(dst), **kw)


MATCH_CASES = {
    "src address": ("-m set --match-set s src", "create s hash:ip\nadd s 10.0.0.1", skb(), {}, True),
    "inverted": ("-m set ! --match-set s src", "create s hash:ip\nadd s 10.0.0.1", skb(), {}, False),
    "inverted miss": ("-m set ! --match-set s dst", "create s hash:ip\nadd s 10.0.0.1", skb(), {}, True),
    "in device from par": ("-m set --match-set s src,src", "create s hash:net,iface\nadd s 10.0.0.0/8,eth0",
                           skb(), {}, True),
    "out device from par": ("-m set --match-set s src,dst", "create s hash:net,iface\nadd s 10.0.0.0/8,eth9",
                            skb(), {"hook": Hook.FORWARD, "out_dev": "eth9"}, True),
    "mark from skb": ("-m set --match-set s src,src", "create s hash:ip,mark\nadd s 10.0.0.1,0x7",
                      skb(mark=7), {}, True),
    "mac from skb": ("-m set --match-set s src", "create s hash:mac\nadd s 02:00:00:00:00:01",
                     skb(mac_src="02:00:00:00:00:01", iif="eth0"), {}, True),
    "no mac for a local packet": ("-m set --match-set s src", "create s hash:mac\nadd s 02:00:00:00:00:01",
                                  skb(mac_src="02:00:00:00:00:01"), {"hook": Hook.POSTROUTING, "in_dev": None},
                                  False),
    "no mac in OUTPUT": ("-m set --match-set s src", "create s hash:mac\nadd s 02:00:00:00:00:01",
                         skb(mac_src="02:00:00:00:00:01"), {"hook": Hook.OUTPUT, "in_dev": None}, False),
    "counters ignored without the extension": ("-m set --match-set s src --packets-gt 100",
                                               "create s hash:ip\nadd s 10.0.0.1", skb(), {}, True),
    "counters moot when nothing is found": ("-m set --match-set s src --packets-gt 100",
                                            "create s hash:ip counters", skb(), {}, False),
    "counters inverted moot": ("-m set ! --match-set s src --bytes-lt 1", "create s hash:ip counters",
                               skb(), {}, True),
}


@pytest.mark.parametrize(("text", "sets", "packet", "par", "expected"), MATCH_CASES.values(),
                         ids=MATCH_CASES.keys())
def test_match(text: str, sets: str, packet: Skb, par: dict[str, Any], expected: bool) -> None:
    assert evaluate(text, sets, packet, **par) is expected


def test_counters_are_uncertain_when_the_set_counts() -> None:
    got = evaluate("-m set --match-set s src --packets-gt 5", "create s hash:ip counters\n"
                   "add s 10.0.0.1 packets 9 bytes 900", skb(length=60))
    assert isinstance(got, Uncertain)
    assert "packets=9 bytes=900" in got.why and "--packets-gt 5" in got.why


def test_missing_set_is_inconsistent() -> None:
    with pytest.raises(SnapshotInconsistent):
        evaluate("-m set --match-set other src", "create s hash:ip", skb())


def test_referenced_sets() -> None:
    rs = rules("-A INPUT -m set --match-set a src -m set --match-set b dst")
    ms = rs.tables["filter"].chains["INPUT"].rules[0].matches
    assert [m.referenced_sets() for m in ms if isinstance(m, SetMatch)] == [("a",), ("b",)]
    assert all(isinstance(m, SetMatch) for m in ms)
    assert hash(ms[0]) == hash(SetMatch("a", (S,)))


# ------------------------------------------------------------------ the SET target
TARGET_RENDER = {
    "add": "-j SET --add-set s src",
    "add exist timeout": "-j SET --add-set s src --exist --timeout 10",
    "del": "-j SET --del-set s dst",
    "all three": "-j SET --add-set s src --exist --timeout 5 --del-set s dst --map-set s src --map-mark "
                 "--map-prio",
}


@pytest.mark.parametrize("text", TARGET_RENDER.values(), ids=TARGET_RENDER.keys())
def test_target_renders_as_iptables_save(text: str) -> None:
    rule = rules(f"-A POSTROUTING {text}", "mangle").tables["mangle"].chains["POSTROUTING"].rules[0]
    assert rule.target.render() == text


def test_target_option_order_is_canonical() -> None:
    rule = rules("-A POSTROUTING -j SET --map-set s src --map-prio --del-set s dst --timeout 5 "
                 "--add-set s src --exist --map-mark", "mangle").tables["mangle"].chains["POSTROUTING"].rules[0]
    assert rule.target.render() == ("-j SET --add-set s src --exist --timeout 5 --del-set s dst "
                                    "--map-set s src --map-mark --map-prio")
    assert isinstance(rule.target, SetTarget) and rule.target.referenced_sets() == ("s", "s", "s")


TARGET_ERRORS = {
    "nothing": ("filter", "INPUT", "-j SET --exist", "You must specify either `--add-set' or `--del-set'"),
    "timeout without add": ("filter", "INPUT", "-j SET --del-set s src --timeout 5",
                            "Option `--timeout' can be used with `--add-set' only"),
    "exist without add": ("filter", "INPUT", "-j SET --del-set s src --exist",
                          "Flag `--exist' can be used with `--add-set' only"),
    "map flag without map": ("filter", "INPUT", "-j SET --add-set s src --map-mark",
                             "Flag `--map-mark' can be used with `--map-set' only"),
    "map without flag": ("mangle", "POSTROUTING", "-j SET --map-set s src",
                         "You must specify flags `--map-mark'"),
    "add twice": ("filter", "INPUT", "-j SET --add-set s src --add-set s dst", "--add-set can be specified only once"),
    "timeout range": ("filter", "INPUT", "-j SET --add-set s src --timeout 4294967295",
                      "out of range 0-4294967294"),
    "map outside mangle": ("filter", "OUTPUT", "-j SET --map-set s src --map-mark",
                           "--map-set only usable from mangle table"),
    "map-prio in PREROUTING": ("mangle", "PREROUTING", "-j SET --map-set s src --map-prio",
                               "allowed only from OUTPUT/FORWARD/POSTROUTING"),
}


@pytest.mark.parametrize(("table", "chain", "text", "message"), TARGET_ERRORS.values(), ids=TARGET_ERRORS.keys())
def test_target_errors(table: str, chain: str, text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        rules(f"-A {chain} {text}", table)
    assert message in info.value.msg


def run_target(text: str, sets_text: str, packet: Skb, hook: Hook = Hook.FORWARD) -> Skb:
    rs = rules(f"-A FORWARD {text}", "mangle")
    tgt = rs.tables["mangle"].chains["FORWARD"].rules[0].target
    assert isinstance(tgt, SetTarget)
    host = Host(rs, ipsets=ipset_save.parse(sets_text, "sets"))
    verdict = tgt.target(packet, XtParams(hook, "mangle", "eth0", "eth1", host))
    assert verdict.value == "CONTINUE"
    return packet


def test_target_add_and_del_are_notes_only() -> None:
    sets_text = "create s hash:net\nadd s 10.0.0.0/16\ncreate p hash:ip,port"
    out = run_target("-j SET --add-set s src --exist --timeout 9 --del-set p src,dst", sets_text, skb())
    assert out.notes == [
        "SET: would add 10.0.0.0/16 to s with timeout 9 (--exist: refreshing the entry if present)",
        "SET: would delete 10.0.0.1,tcp:80 from p",
    ]


MAP_CASES = {
    "mark with mask": ("add s 10.0.0.1 skbmark 0x10/0xf0", 0x1FF, 0x11F),
    "mark without mask": ("add s 10.0.0.1 skbmark 0x10", 0x1FF, 0x10),
    "entry without skbinfo": ("add s 10.0.0.1", 0x1FF, 0x1FF),
    "packet not in set": ("add s 10.0.0.2 skbmark 0x10", 0x1FF, 0x1FF),
}


@pytest.mark.parametrize(("entry", "mark", "expected"), MAP_CASES.values(), ids=MAP_CASES.keys())
def test_target_map_mark(entry: str, mark: int, expected: int) -> None:
    out = run_target("-j SET --map-set s src --map-mark", f"create s hash:ip skbinfo\n{entry}", skb(mark=mark))
    assert out.mark == expected


def test_target_map_prio_and_queue_are_noted() -> None:
    out = run_target("-j SET --map-set s src --map-prio --map-queue",
                     "create s hash:ip skbinfo\nadd s 10.0.0.1 skbprio 1:2 skbqueue 3", skb())
    assert out.notes == ["SET: --map-prio from s: would set priority 1:2",
                         "SET: --map-queue from s: would set queue mapping 3 (if the output device has that "
                         "many TX queues)"]


def test_sets_are_values() -> None:
    a = ipset_save.parse("create s hash:ip\nadd s 10.0.0.1\nadd s 10.0.0.2", "a")["s"]
    b = ipset_save.parse("create s hash:ip\nadd s 10.0.0.2\nadd s 10.0.0.1", "b")["s"]
    assert a == b and hash(a) == hash(b) and isinstance(a, IpSet)
    la = ipset_save.parse("create x hash:ip\ncreate y hash:ip\ncreate l list:set\nadd l x\nadd l y", "a")["l"]
    lb = ipset_save.parse("create x hash:ip\ncreate y hash:ip\ncreate l list:set\nadd l y\nadd l x", "b")["l"]
    assert la != lb  # list:set members are ordered
