"""The added x_tables extensions: canonical rendering (goldens taken from iptables-legacy-save
1.8.9 on Linux 6.18), what the kernel refuses, and each match's decision on a described
packet -- True, False or Uncertain with its probability.  tests/kernel/test_ext_kernel.py
checks the same against the real kernel."""

from __future__ import annotations

import pytest

from pktpath.engine.conntrack import attach_new
from pktpath.engine.host import Host
from pktpath.engine.skb import Hook, Skb, Socket, XtParams
from pktpath.errors import ParseError, UnsupportedFeature
from pktpath.ext.m_cluster import cluster_node, jhash_1word
from pktpath.model.addr import ip_to_int
from pktpath.model.xtables import BUILTIN_CHAINS, Match, Rule, Target, Uncertain, Verdict
from pktpath.parse.iptables_save import parse


def one_rule(rule: str, table: str = "filter", chain: str = "INPUT") -> Rule:
    head = "".join(f":{c} ACCEPT [0:0]\n" for c in BUILTIN_CHAINS[table])
    rs = parse(f"*{table}\n{head}-A {chain} {rule}\nCOMMIT\n", "t.txt")
    return rs.tables[table].chains[chain].rules[0]


def ext(rule: str, table: str = "filter", chain: str = "INPUT") -> Match | Target:
    r = one_rule(rule, table, chain)
    if isinstance(r.target, Target):
        return r.target
    return r.matches[-1]


# ------------------------------------------------------------------ rendering (iptables-save goldens)
RENDER = [
    ("owner-order", "filter", "OUTPUT", "-m owner --gid-owner 10 ! --socket-exists",
     "-m owner ! --socket-exists --gid-owner 10"),
    ("pkttype-host", "filter", "INPUT", "-m pkttype --pkt-type host", "-m pkttype --pkt-type unicast"),
    ("limit-default", "filter", "INPUT", "-m limit", "-m limit --limit 3/hour"),
    ("limit-abbrev", "filter", "INPUT", "-m limit --limit 5/m --limit-burst 10",
     "-m limit --limit 5/min --limit-burst 10"),
    ("hashlimit-defaults", "filter", "INPUT", "-m hashlimit --hashlimit-upto 10/sec --hashlimit-name foo",
     "-m hashlimit --hashlimit-upto 10/sec --hashlimit-burst 5 --hashlimit-name foo"),
    ("hashlimit-bytes", "filter", "INPUT", "-m hashlimit --hashlimit-upto 100b/s --hashlimit-name a",
     "-m hashlimit --hashlimit-upto 96b/s --hashlimit-name a"),
    ("hashlimit-mode-order", "filter", "INPUT",
     "-m hashlimit --hashlimit-upto 10/sec --hashlimit-name a --hashlimit-mode dstip,srcip,srcport "
     "--hashlimit-dstmask 16",
     "-m hashlimit --hashlimit-upto 10/sec --hashlimit-burst 5 --hashlimit-mode srcip,srcport,dstip "
     "--hashlimit-name a --hashlimit-dstmask 16"),
    ("recent-defaults", "filter", "INPUT", "-m recent --remove",
     "-m recent --remove --name DEFAULT --mask 255.255.255.255 --rsource"),
    ("connlimit-defaults", "filter", "INPUT", "-m connlimit --connlimit-above 2",
     "-m connlimit --connlimit-above 2 --connlimit-mask 32 --connlimit-saddr"),
    ("connbytes-order", "filter", "INPUT",
     "-m connbytes --connbytes 10 --connbytes-dir original --connbytes-mode packets",
     "-m connbytes --connbytes 10 --connbytes-mode packets --connbytes-dir original"),
    ("time-datestop-default", "filter", "INPUT", "-m time --timestart 08:00 --timestop 17:30:10",
     "-m time --timestart 08:00:00 --timestop 17:30:10 --datestop 2038-01-19T03:14:07"),
    ("time-inverted-weekdays", "filter", "INPUT", "-m time ! --weekdays Sat,Sun",
     "-m time --weekdays Mon,Tue,Wed,Thu,Fri --datestop 2038-01-19T03:14:07"),
    ("statistic-kube", "filter", "INPUT", "-m statistic --mode random --probability 0.33333333349",
     "-m statistic --mode random --probability 0.33333333349"),
    ("statistic-neg", "filter", "INPUT", "-m statistic --mode random ! --probability 0.5",
     "-m statistic --mode random ! --probability 0.50000000000"),
    ("policy-element-order", "filter", "OUTPUT",
     "-m policy --dir out --pol ipsec --tunnel-src 1.2.3.4 --tunnel-dst 5.6.7.8/24 --next ! --reqid 6",
     "-m policy --dir out --pol ipsec --tunnel-dst 5.6.7.8/24 --tunnel-src 1.2.3.4 --next ! --reqid 6"),
    ("sctp-chunks", "filter", "INPUT", "-p sctp --dport 80 --chunk-types any INIT,DATA:Be",
     "-m sctp --dport 80 --chunk-types any DATA:Be,INIT"),
    ("tos-name", "filter", "INPUT", "-m tos ! --tos Minimize-Delay", "-m tos ! --tos 0x10/0x3f"),
    ("dscp-class", "filter", "INPUT", "-m dscp --dscp-class AF41", "-m dscp --dscp 0x22"),
    ("helper-quoting", "filter", "INPUT", '-m helper --helper ""', '-m helper --helper ""'),
    ("cgroup-classid", "filter", "INPUT", "-m cgroup ! --cgroup 0x100001", "-m cgroup ! --cgroup 1048577"),
    ("cgroup-path", "filter", "OUTPUT", "-m cgroup --path /", '-m cgroup --path "/"'),
    ("string-hex", "filter", "INPUT", '-m string --hex-string "|00 01 02|foo" --algo bm',
     '-m string --hex-string "|000102666f6f|" --algo bm'),
    ("string-default-to", "filter", "INPUT", '-m string --string "a b" --algo bm --to 65535',
     '-m string --string "a b" --algo bm'),
    ("u32-hex", "filter", "INPUT", '-m u32 ! --u32 "6&0xFF=1,6,17:20&&0 >> 28 = 4"',
     '-m u32 ! --u32 "0x6&0xff=0x1,0x6,0x11:0x14&&0x0>>0x1c=0x4"'),
    ("devgroup-name", "filter", "INPUT", "-m devgroup --src-group 0", "-m devgroup --src-group default"),
    ("realm-name", "filter", "INPUT", "-m realm --realm 0", "-m realm --realm cosmos"),
    ("physdev-order", "filter", "FORWARD", "-m physdev ! --physdev-in eth+ --physdev-is-in",
     "-m physdev --physdev-is-in ! --physdev-in eth+"),
    ("esp-full-range", "filter", "INPUT", "-p esp -m esp --espspi 0:4294967295", "-m esp"),
    ("connlabel-quoted", "filter", "INPUT", "-m connlabel --label 5", '-m connlabel --label "5"'),
    ("cluster-mask", "filter", "INPUT",
     "-m cluster --cluster-total-nodes 2 --cluster-local-node 1 --cluster-hash-seed 0xdeadbeef",
     "-m cluster --cluster-local-nodemask 0x00000001 --cluster-total-nodes 2 --cluster-hash-seed 0xdeadbeef"),
    ("nfacct-two-spaces", "filter", "INPUT", "-m nfacct --nfacct-name foo", "-m nfacct --nfacct-name  foo"),
    ("ipvs", "filter", "INPUT", "-m ipvs ! --ipvs", "-m ipvs ! --ipvs"),
    ("NFLOG", "filter", "INPUT", '-j NFLOG --nflog-group 5 --nflog-prefix "hello world"',
     '-j NFLOG --nflog-prefix "hello world" --nflog-group 5'),
    ("NFQUEUE-default", "filter", "INPUT", "-j NFQUEUE", "-j NFQUEUE --queue-num 0"),
    ("NETMAP-masked", "nat", "POSTROUTING", "-j NETMAP --to 10.0.5.7/16", "-j NETMAP --to 10.0.0.0/16"),
    ("TOS-and", "mangle", "POSTROUTING", "-j TOS --and-tos 0x0f", "-j TOS --set-tos 0x00/0xf0"),
    ("TOS-name", "mangle", "POSTROUTING", "-j TOS --set-tos Minimize-Delay", "-j TOS --set-tos 0x10/0x3f"),
    ("DSCP-class", "mangle", "POSTROUTING", "-j DSCP --set-dscp-class EF", "-j DSCP --set-dscp 0x2e"),
    ("ECN-order", "mangle", "POSTROUTING", "-p tcp -j ECN --ecn-tcp-cwr 1 --ecn-tcp-ece 0",
     "-j ECN --ecn-tcp-ece 0 --ecn-tcp-cwr 1"),
    ("CLASSIFY-hex", "mangle", "POSTROUTING", "-j CLASSIFY --set-class 1:10", "-j CLASSIFY --set-class 0001:0010"),
    ("TPROXY-defaults", "mangle", "PREROUTING", "-p tcp -j TPROXY --on-port 8080",
     "-j TPROXY --on-port 8080 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0"),
    ("LED", "filter", "INPUT", "-j LED --led-trigger-id x --led-delay inf",
     '-j LED --led-trigger-id "x" --led-delay inf'),
]


@pytest.mark.parametrize("table,chain,rule,expected", [c[1:] for c in RENDER], ids=[c[0] for c in RENDER])
def test_render_canonical(table: str, chain: str, rule: str, expected: str) -> None:
    assert ext(rule, table, chain).render() == expected
    # the canonical form is a fixed point (keeping the rule's -p, which some extensions need)
    proto = " ".join(rule.split()[:2]) + " " if rule.startswith("-p ") else ""
    assert ext(proto + expected, table, chain).render() == expected


# ------------------------------------------------------------------ what iptables/the kernel refuse
REFUSED = [
    ("owner-in-INPUT", "filter", "INPUT", "-m owner --uid-owner 0", "cannot be used from INPUT"),
    ("rpfilter-filter-table", "filter", "INPUT", "-m rpfilter", "only valid in the 'raw' or 'mangle'"),
    ("policy-in-OUTPUT", "filter", "OUTPUT", "-m policy --dir in --pol none", "cannot be used from OUTPUT"),
    ("sctp-without-p", "filter", "INPUT", "-m sctp --dport 80", "needs '-p sctp'"),
    ("ecn-tcp-without-p", "filter", "INPUT", "-m ecn --ecn-tcp-ece", "without '-p tcp'"),
    ("tcpmss-without-p", "filter", "INPUT", "-m tcpmss --mss 536", "needs '-p tcp'"),
    ("socket-in-OUTPUT", "filter", "OUTPUT", "-m socket", "cannot be used from OUTPUT"),
    ("devgroup-dst-in-INPUT", "filter", "INPUT", "-m devgroup --dst-group 1", "cannot be used from INPUT"),
    ("realm-in-PREROUTING", "mangle", "PREROUTING", "-m realm --realm 1", "cannot be used from PREROUTING"),
    ("physdev-out-in-OUTPUT", "filter", "OUTPUT", "-m physdev --physdev-out eth0", "refuses them in OUTPUT"),
    ("statistic-every-needs-packet", "filter", "INPUT", "-m statistic --mode nth --every 3", "requires \"--packet\""),
    ("statistic-packet-range", "filter", "INPUT", "-m statistic --mode nth --every 3 --packet 3", "0 <= p <= n-1"),
    ("recent-name-not-invertible", "filter", "INPUT", "-m recent --set ! --name X", "cannot be inverted"),
    ("cluster-needs-seed", "filter", "INPUT", "-m cluster --cluster-total-nodes 4 --cluster-local-node 2",
     "--cluster-hash-seed"),
    ("string-needs-algo", "filter", "INPUT", "-m string --string x", "--algo"),
    ("time-contiguous", "filter", "INPUT", "-m time --timestart 08:00 --timestop 17:00 --contiguous",
     "--contiguous only makes sense"),
    ("pkttype-loopback", "filter", "INPUT", "-m pkttype --pkt-type loopback", "Bad packet type"),
    ("NETMAP-in-filter", "filter", "INPUT", "-j NETMAP --to 10.0.0.0/24", "only valid in the nat table"),
    ("CHECKSUM-in-filter", "filter", "INPUT", "-j CHECKSUM --checksum-fill", "only valid in the mangle table"),
    ("TTL-dec-0", "mangle", "POSTROUTING", "-j TTL --ttl-dec 0", "out of range"),
    ("TTL-in-filter", "filter", "INPUT", "-j TTL --ttl-set 5", "only valid in the mangle table"),
    ("TCPMSS-no-syn-match", "mangle", "FORWARD", "-p tcp -j TCPMSS --set-mss 1400", "only works on TCP SYN"),
    ("TCPMSS-inverted-syn", "mangle", "FORWARD", "-p tcp ! --syn -j TCPMSS --set-mss 1400", "only works on TCP SYN"),
    ("TCPMSS-clamp-PREROUTING", "mangle", "PREROUTING", "-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu",
     "FORWARD, OUTPUT and POSTROUTING"),
    ("ECN-tcp-without-p", "mangle", "POSTROUTING", "-j ECN --ecn-tcp-remove", "without '-p tcp'"),
    ("CLASSIFY-in-INPUT", "mangle", "INPUT", "-j CLASSIFY --set-class 1:10", "cannot be used from INPUT"),
    ("SYNPROXY-PREROUTING", "raw", "PREROUTING", "-p tcp -j SYNPROXY", "cannot be used from PREROUTING"),
    ("TPROXY-without-p", "mangle", "PREROUTING", "-j TPROXY --on-port 1", "only with -p tcp or -p udp"),
    ("TPROXY-in-INPUT", "mangle", "INPUT", "-p tcp -j TPROXY --on-port 1", "cannot be used from INPUT"),
    ("NFQUEUE-balance-order", "filter", "INPUT", "-j NFQUEUE --queue-balance 3:3", "should be less than"),
]


@pytest.mark.parametrize("table,chain,rule,msg", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused(table: str, chain: str, rule: str, msg: str) -> None:
    with pytest.raises(ParseError) as info:
        one_rule(rule, table, chain)
    assert msg in str(info.value)


def test_hmark_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature, match="HMARK"):
        one_rule("-j HMARK --hmark-tuple src,dst --hmark-mod 10 --hmark-rnd 0xfeedcafe")


# ------------------------------------------------------------------ decisions on a described packet
def skb(**kw: object) -> Skb:
    base: dict[str, object] = {"src": ip_to_int("198.18.0.2"), "dst": ip_to_int("198.18.0.1"), "proto": 6,
                               "sport": 40000, "dport": 80, "tcp_flags": 0x02, "length": 40, "iif": "eth0"}
    base.update(kw)
    return Skb(**base)  # type: ignore[arg-type]


def decide(rule: str, packet: Skb, hook: Hook = Hook.INPUT, table: str = "filter", new_ct: bool = False,
           out_dev: str | None = None) -> bool | Uncertain:
    r = one_rule(rule, table, hook.name)
    host = Host(parse(f"*{table}\nCOMMIT\n", "x"))
    if new_ct:
        attach_new(packet)
    par = XtParams(hook, table, None if hook in (Hook.OUTPUT, Hook.POSTROUTING) else packet.iif, out_dev, host)
    result: bool | Uncertain = True
    for m in r.matches:
        got = m.matches(packet, par)
        if got is False:
            return False
        if isinstance(got, Uncertain):
            result = got
    return result


LOCAL = {"iif": None, "sk": Socket(1234, 4321), "src": ip_to_int("198.18.0.1"), "dst": ip_to_int("198.18.0.2")}

DECISIONS = [
    ("owner-uid", "-m owner --uid-owner 1234", LOCAL, Hook.OUTPUT, False, True),
    ("owner-uid-range-miss", "-m owner --uid-owner 0-1000", LOCAL, Hook.OUTPUT, False, False),
    ("owner-no-socket-inverted", "-m owner ! --uid-owner 0", {}, Hook.POSTROUTING, False, True),
    ("owner-no-socket-mixed", "-m owner ! --uid-owner 0 --gid-owner 0", {}, Hook.POSTROUTING, False, False),
    ("owner-suppl", "-m owner --gid-owner 5 --suppl-groups", LOCAL, Hook.OUTPUT, False, None),
    ("pkttype-local-broadcast", "-m pkttype --pkt-type broadcast", {**LOCAL, "pkt_type": "broadcast"},
     Hook.OUTPUT, False, False),
    ("pkttype-loopback-copy", "-m pkttype --pkt-type multicast",
     {"pkt_type": "loopback", "dst": ip_to_int("224.0.0.5"), "iif": "lo"}, Hook.INPUT, False, True),
    ("statistic-1", "-m statistic --mode random --probability 1", {}, Hook.INPUT, False, True),
    ("statistic-nth-1", "-m statistic --mode nth ! --every 1 --packet 0", {}, Hook.INPUT, False, False),
    ("quota-too-long", "-m quota --quota 39", {}, Hook.INPUT, False, False),
    ("quota-budget", "-m quota --quota 40", {}, Hook.INPUT, False, None),
    ("connbytes-first", "-m connbytes --connbytes 40:40 --connbytes-dir original --connbytes-mode bytes", {},
     Hook.INPUT, True, True),
    ("connbytes-no-ct", "-m connbytes --connbytes 0 --connbytes-dir original --connbytes-mode bytes", {},
     Hook.INPUT, False, False),
    ("helper-new", "-m helper ! --helper ftp", {}, Hook.INPUT, True, True),
    ("connlimit-above-0", "-m connlimit --connlimit-above 0", {}, Hook.INPUT, True, True),
    ("policy-none", "-m policy --dir in --pol none", {}, Hook.INPUT, False, True),
    ("policy-ipsec", "-m policy --dir in --pol ipsec", {}, Hook.INPUT, False, False),
    ("tcpmss-ack", "-p tcp -m tcpmss ! --mss 536", {"tcp_flags": 0x10}, Hook.INPUT, False, True),
    ("tcpmss-syn", "-p tcp -m tcpmss --mss 536", {}, Hook.INPUT, False, None),
    ("ecn-flags", "-p tcp -m ecn --ecn-tcp-ece --ecn-ip-ect 2", {"tcp_flags": 0x42, "tos": 0x02}, Hook.INPUT,
     False, True),
    ("tos-mask", "-m tos --tos 0x10/0xfc", {"tos": 0x12}, Hook.INPUT, False, True),
    ("dscp", "-m dscp --dscp-class EF", {"tos": 0xB9}, Hook.INPUT, False, True),
    ("physdev-inverted-only", "-m physdev ! --physdev-is-bridged ! --physdev-in x", {}, Hook.INPUT, False, True),
    ("physdev-plain", "-m physdev --physdev-in eth0", {}, Hook.INPUT, False, False),
    ("ipvs-none", "-m ipvs --ipvs", {}, Hook.INPUT, False, False),
    ("ipvs-inverted", "-m ipvs ! --ipvs", {}, Hook.INPUT, False, True),
    ("ipvs-other-option", "-m ipvs ! --vport 80", {}, Hook.INPUT, False, False),
    ("cgroup-input-syn", "-m cgroup ! --cgroup 1", {}, Hook.INPUT, False, False),
    ("cgroup-input-ack", "-m cgroup --cgroup 1", {"tcp_flags": 0x10}, Hook.INPUT, False, None),
    ("u32-dport", '-m u32 --u32 "0>>22&0x3C@0&0xFFFF=80"', {}, Hook.INPUT, False, True),
    ("u32-df-unknown", '-m u32 --u32 "4&0x4000=0x4000"', {}, Hook.INPUT, False, None),
    ("u32-mask-away-unknown", '-m u32 --u32 "4&0x1FFF=0"', {}, Hook.INPUT, False, True),
    ("u32-out-of-packet", '-m u32 --u32 "100=0"', {}, Hook.INPUT, False, False),
    ("u32-payload", '-m u32 --u32 "40=0"', {"length": 60}, Hook.INPUT, False, None),
    ("u32-inverted", '-m u32 ! --u32 "0>>28=4"', {}, Hook.INPUT, False, False),
    ("sctp-port-miss", "-p sctp -m sctp --dport 81 --chunk-types any INIT", {"proto": 132}, Hook.INPUT, False,
     False),
    ("esp-full", "-p esp -m esp", {"proto": 50, "sport": None, "dport": None}, Hook.INPUT, False, True),
    ("esp-spi", "-p esp -m esp --espspi 5", {"proto": 50, "sport": None, "dport": None}, Hook.INPUT, False, None),
    ("recent-set", "-m recent --set --name X", {}, Hook.INPUT, False, True),
    ("recent-check", "-m recent --rcheck --name X", {}, Hook.INPUT, False, None),
    ("connlabel-set", "-m connlabel --label 3 --set", {}, Hook.INPUT, True, True),
    ("connlabel-new", "-m connlabel --label 3", {}, Hook.INPUT, True, False),
]


@pytest.mark.parametrize("rule,fields,hook,new_ct,expected", [c[1:] for c in DECISIONS],
                         ids=[c[0] for c in DECISIONS])
def test_decision(rule: str, fields: dict[str, object], hook: Hook, new_ct: bool, expected: bool | None) -> None:
    table = "mangle" if hook == Hook.POSTROUTING else "filter"
    got = decide(rule, skb(**fields), hook, table, new_ct, out_dev="eth0")
    if expected is None:
        assert isinstance(got, Uncertain) and got.why
    else:
        assert got is expected


def test_statistic_probability_is_carried() -> None:
    m = ext("-m statistic --mode random --probability 0.33333333349")
    got = m.matches(skb(), XtParams(Hook.INPUT, "filter", "eth0", None, Host(parse("", "x"))))  # type: ignore[union-attr]
    assert isinstance(got, Uncertain) and got.probability == pytest.approx(1 / 3, abs=1e-9)
    nth = ext("-m statistic --mode nth ! --every 4 --packet 0")
    got = nth.matches(skb(), XtParams(Hook.INPUT, "filter", "eth0", None, Host(parse("", "x"))))  # type: ignore[union-attr]
    assert isinstance(got, Uncertain) and got.probability == pytest.approx(0.75)


def test_cluster_node_range() -> None:
    """The hash is checked against the kernel by the cluster-hash kernel case; here its range."""
    assert jhash_1word(0, 0) <= 0xFFFFFFFF
    assert cluster_node(ip_to_int("198.18.0.2"), 0xDEADBEEF, 1) == 0
    assert {cluster_node(a, 7, 4) for a in range(ip_to_int("10.0.0.0"), ip_to_int("10.0.0.64"))} == {0, 1, 2, 3}


TARGETS = [
    ("DSCP", "-j DSCP --set-dscp 0x2e", "mangle", Hook.PREROUTING, {"tos": 0x01}, "tos", 0xB9, Verdict.CONTINUE),
    ("TOS-name", "-j TOS --set-tos Minimize-Delay", "mangle", Hook.PREROUTING, {"tos": 0x03}, "tos", 0x10,
     Verdict.CONTINUE),
    ("TTL-dec-floor", "-j TTL --ttl-dec 100", "mangle", Hook.PREROUTING, {"ttl": 5}, "ttl", 0, Verdict.CONTINUE),
    ("TTL-inc-ceiling", "-j TTL --ttl-inc 255", "mangle", Hook.PREROUTING, {"ttl": 5}, "ttl", 255, Verdict.CONTINUE),
    ("ECN-remove", "-p tcp -j ECN --ecn-tcp-remove", "mangle", Hook.PREROUTING, {"tcp_flags": 0xC2}, "tcp_flags",
     0x02, Verdict.CONTINUE),
    ("TPROXY-mark", "-p tcp -j TPROXY --on-port 1 --tproxy-mark 0x1/0x1", "mangle", Hook.PREROUTING, {"mark": 0x10},
     "mark", 0x11, Verdict.ACCEPT),
    ("NFQUEUE", "-j NFQUEUE", "filter", Hook.INPUT, {}, "mark", 0, Verdict.QUEUE),
    ("NFQUEUE-bypass", "-j NFQUEUE --queue-bypass", "filter", Hook.INPUT, {}, "mark", 0, Verdict.ACCEPT),
    ("SYNPROXY-syn", "-p tcp -j SYNPROXY", "filter", Hook.INPUT, {}, "mark", 0, Verdict.STOLEN),
    ("SYNPROXY-ack", "-p tcp -j SYNPROXY", "filter", Hook.INPUT, {"tcp_flags": 0x10}, "mark", 0, Verdict.DROP),
    ("SYNPROXY-fin", "-p tcp -j SYNPROXY", "filter", Hook.INPUT, {"tcp_flags": 0x11}, "mark", 0, Verdict.CONTINUE),
]


@pytest.mark.parametrize("rule,table,hook,fields,attr,value,verdict", [c[1:] for c in TARGETS],
                         ids=[c[0] for c in TARGETS])
def test_target(rule: str, table: str, hook: Hook, fields: dict[str, object], attr: str, value: int,
                verdict: Verdict) -> None:
    t = ext(rule, table, hook.name)
    assert isinstance(t, Target)
    packet = skb(**fields)
    got = t.target(packet, XtParams(hook, table, "eth0", None, Host(parse("", "x"))))
    assert (got, getattr(packet, attr)) == (verdict, value)
