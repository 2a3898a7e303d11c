"""``iptables -L`` listings read back against the real iptables-legacy and kernel.

Each case loads one rule into a scratch network namespace (``ppl-<pid>-<n>``) with
``iptables-legacy-restore``, lists its table in four flavours and checks that
``pktpath.parse.iptables_list.parse`` of the listing gives the rules that
``pktpath.parse.iptables_save.parse`` gives for ``iptables-legacy-save`` of the same table --
exactly, except where the flavour cannot carry the rule (no ``-v``: interfaces; without ``-n``:
names), and there the difference must be the uncertain test the notes report.

Needs root, ``ip`` and iptables-legacy; skipped otherwise, except in CI (``CI=true``) where a
missing sandbox fails.  The namespace is always deleted.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from pktpath.ext.unparsed import UnparsedRule
from pktpath.model.xtables import Rule, Ruleset
from pktpath.parse import iptables_list, iptables_save

pytestmark = pytest.mark.kernel

FLAVOURS = {
    "nvx-lines": ["-L", "-n", "-v", "-x", "--line-numbers"],
    "nv": ["-L", "-n", "-v"],
    "n": ["-L", "-n"],  # no -v: no interfaces
    "names": ["-L", "-v"],  # no -n: addresses, ports, users... as names
}
USER_CHAINS = {"filter": ["USR", "other-chain-with-long-name"], "nat": ["NATCHAIN"]}
_counter = itertools.count()


@dataclass(frozen=True)
class Case:
    id: str
    table: str
    rule: str  # what follows "-A "
    lossy: frozenset[str] = frozenset()  # flavours that cannot carry the rule (an uncertain test stands in)


def _c(id: str, table: str, rule: str, lossy: str = "") -> Case:
    return Case(id, table, rule, frozenset(lossy.split()))


CASES = [
    _c("in-iface", "filter", "INPUT -i lo -j ACCEPT"),
    _c("iface-neg-wildcard", "filter", "FORWARD ! -i eth0 -o eth1+ -j ACCEPT"),
    _c("src-dst-neg", "filter", "INPUT -s 10.0.0.0/8 ! -d 192.168.1.1/32 -j DROP"),
    _c("src-dotted-mask", "filter", "INPUT ! -s 10.0.0.0/255.0.255.0 -j DROP"),
    _c("src-neg-any", "filter", "INPUT ! -s 0.0.0.0/0 -j DROP"),
    _c("localhost", "filter", "INPUT -s 127.0.0.1/32 -d 127.0.0.0/8 -j ACCEPT"),
    _c("frag", "filter", "INPUT -f -j DROP"),
    _c("frag-neg", "filter", "INPUT ! -f -p udp -j DROP"),
    _c("proto-neg", "filter", "INPUT ! -p tcp -j DROP"),
    _c("proto-number-named", "filter", "INPUT -p 47 -j ACCEPT"),
    _c("proto-number-unnamed", "filter", "INPUT -p 253 -j ACCEPT"),
    _c("tcp-dport", "filter", "INPUT -p tcp -m tcp --dport 22 -j ACCEPT"),
    _c("tcp-dport-neg", "filter", "INPUT -p tcp -m tcp ! --dport 22 -j ACCEPT"),
    _c("tcp-ranges", "filter", "INPUT -p tcp -m tcp --sport 1024:65535 --dport 80:90 -j ACCEPT"),
    _c("tcp-syn", "filter", "INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"),
    _c("tcp-flags-neg", "filter", "INPUT -p tcp -m tcp ! --tcp-flags ALL NONE -j DROP"),
    _c("tcp-option", "filter", "INPUT -p tcp -m tcp --tcp-option 2 -j ACCEPT"),
    _c("tcp-option-neg", "filter", "INPUT -p tcp -m tcp ! --tcp-option 3 -j ACCEPT"),
    _c("proto-only", "filter", "INPUT -p tcp -j ACCEPT"),
    _c("tcp-bare", "filter", "INPUT -p tcp -m tcp -j ACCEPT"),
    _c("udp-ports", "filter", "INPUT -p udp -m udp --sport 53 ! --dport 1:1023 -j ACCEPT"),
    _c("icmp-type", "filter", "INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT"),
    _c("icmp-type-code", "filter", "INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT"),
    _c("icmp-neg", "filter", "INPUT -p icmp -m icmp ! --icmp-type echo-reply -j ACCEPT"),
    _c("icmp-any", "filter", "INPUT -p icmp -m icmp --icmp-type any -j ACCEPT"),
    _c("icmp-name", "filter", "INPUT -p icmp -m icmp --icmp-type destination-unreachable -j ACCEPT"),
    _c("multiport-dports", "filter", "INPUT -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT"),
    _c("multiport-sports-neg", "filter", "INPUT -p udp -m multiport ! --sports 53,67 -j ACCEPT"),
    _c("multiport-ports", "filter", "INPUT -p tcp -m multiport --ports 22 -j ACCEPT"),
    _c("state", "filter", "INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"),
    _c("state-neg", "filter", "INPUT -m state ! --state INVALID -j ACCEPT"),
    _c("ctstate", "filter", "INPUT -m conntrack --ctstate NEW,UNTRACKED,SNAT,DNAT -j ACCEPT"),
    _c("conntrack-tuple", "filter", "INPUT -m conntrack ! --ctstate NEW --ctproto 6 --ctorigsrc 10.0.0.0/8 "
       "! --ctorigdst 1.2.3.4 --ctreplsrc 5.6.7.8 --ctrepldst 0.0.0.0/0 -j ACCEPT", lossy="names"),
    _c("conntrack-ports", "filter", "INPUT -m conntrack --ctorigsrcport 1000 --ctorigdstport 80:90 "
       "! --ctreplsrcport 5 --ctrepldstport 6 -j ACCEPT"),
    _c("conntrack-status", "filter", "INPUT -m conntrack --ctstatus ASSURED,CONFIRMED --ctexpire 10:20 "
       "--ctdir REPLY -j ACCEPT"),
    _c("conntrack-status-neg", "filter", "INPUT -m conntrack ! --ctstatus NONE ! --ctexpire 5 --ctdir ORIGINAL "
       "-j ACCEPT"),
    _c("conntrack-twice", "filter", "INPUT -m conntrack --ctstate NEW -m conntrack --ctstate NEW -j ACCEPT"),
    _c("mark", "filter", "INPUT -m mark --mark 0x1/0x1 -j ACCEPT"),
    _c("mark-neg", "filter", "INPUT -m mark ! --mark 0x4000 -j ACCEPT"),
    _c("connmark", "filter", "INPUT -m connmark --mark 0x10/0xff -j ACCEPT"),
    _c("connmark-neg", "filter", "INPUT -m connmark ! --mark 0x2 -j ACCEPT"),
    _c("comment-end-marker", "filter", 'INPUT -m comment --comment "hello world */ x" -j ACCEPT'),
    _c("comment-quotes", "filter", "INPUT -m comment --comment \"a \\\"quoted\\\" 'word'\" -j ACCEPT"),
    _c("comment-then-match", "filter", 'INPUT -m comment --comment "web" -p tcp -m tcp --dport 80 -j ACCEPT'),
    _c("addrtype-out", "filter", "OUTPUT -m addrtype --dst-type LOCAL --limit-iface-out -j ACCEPT"),
    _c("addrtype-neg-in", "filter", "INPUT -m addrtype ! --src-type LOCAL,BROADCAST --limit-iface-in -j ACCEPT"),
    _c("iprange", "filter", "INPUT -m iprange --src-range 10.0.0.1-10.0.0.9 ! --dst-range 10.1.0.1-10.1.0.9 "
       "-j ACCEPT"),
    _c("mac", "filter", "INPUT -m mac --mac-source 00:11:22:33:44:55 -j ACCEPT"),
    _c("mac-neg", "filter", "INPUT -m mac ! --mac-source 00:11:22:AA:BB:CC -j ACCEPT"),
    _c("limit", "filter", "INPUT -m limit --limit 3/min --limit-burst 5 -j ACCEPT"),
    _c("limit-hour", "filter", "INPUT -m limit --limit 7/hour -j ACCEPT"),
    _c("limit-sec", "filter", "INPUT -m limit --limit 100/sec --limit-burst 1 -j ACCEPT"),
    _c("limit-day", "filter", "INPUT -m limit --limit 2/day -j ACCEPT"),
    _c("recent-set", "filter", "INPUT -m recent --set --name SSH --mask 255.255.255.255 --rsource -j ACCEPT"),
    _c("recent-update", "filter", "INPUT -m recent --update --seconds 60 --hitcount 4 --rttl --name SSH "
       "--mask 255.255.255.0 --rdest -j DROP"),
    _c("recent-rcheck-neg", "filter", "INPUT -m recent ! --rcheck --seconds 30 --reap --name X "
       "--mask 255.255.255.255 --rsource -j DROP"),
    _c("recent-remove", "filter", "INPUT -m recent --remove --name DEFAULT --mask 255.255.255.255 --rsource -j DROP"),
    _c("length", "filter", "INPUT -m length --length 0:100 -j ACCEPT"),
    _c("length-neg", "filter", "INPUT -m length ! --length 1500 -j ACCEPT"),
    _c("ttl-eq", "filter", "INPUT -m ttl --ttl-eq 64 -j ACCEPT"),
    _c("ttl-ne", "filter", "INPUT -m ttl ! --ttl-eq 1 -j ACCEPT"),
    _c("ttl-lt", "filter", "INPUT -m ttl --ttl-lt 5 -j ACCEPT"),
    _c("ttl-gt", "filter", "INPUT -m ttl --ttl-gt 200 -j ACCEPT"),
    _c("physdev", "filter", "FORWARD -m physdev --physdev-in eth0 ! --physdev-out eth1 --physdev-is-bridged "
       "-j ACCEPT"),
    _c("physdev-is", "filter", "FORWARD -m physdev ! --physdev-is-in --physdev-is-out -j ACCEPT"),
    _c("pkttype", "filter", "INPUT -m pkttype --pkt-type broadcast -j DROP"),
    _c("pkttype-neg", "filter", "INPUT -m pkttype ! --pkt-type unicast -j DROP"),
    _c("statistic-random", "filter", "INPUT -m statistic --mode random --probability 0.25000000000 -j DROP"),
    _c("statistic-nth", "filter", "INPUT -m statistic --mode nth ! --every 3 --packet 1 -j DROP"),
    _c("tos", "filter", "INPUT -m tos --tos 0x10/0x3f -j ACCEPT"),
    _c("dscp", "filter", "INPUT -m dscp --dscp 0x0a -j ACCEPT"),
    _c("helper", "filter", "INPUT -m helper --helper ftp -j ACCEPT"),
    _c("sctp", "filter", "INPUT -p sctp -m sctp --sport 5 --dport 6:7 -j ACCEPT"),
    _c("set", "filter", "INPUT -m set --match-set pplset src,dst -j ACCEPT"),
    _c("set-neg", "filter", "INPUT -m set ! --match-set pplset src --return-nomatch -j ACCEPT"),
    _c("owner-uid", "filter", "OUTPUT -m owner --uid-owner 0 -j ACCEPT"),
    _c("owner-range-gid", "filter", "OUTPUT -m owner --uid-owner 1000-2000 ! --gid-owner 4712 --suppl-groups "
       "-j ACCEPT"),
    _c("owner-neg-uid", "filter", "OUTPUT -m owner ! --uid-owner 4711 --gid-owner 0 -j ACCEPT"),
    _c("owner-socket", "filter", "OUTPUT -m owner --socket-exists -j ACCEPT"),
    _c("reject-tcp-reset", "filter", "INPUT -p tcp -j REJECT --reject-with tcp-reset"),
    _c("reject-port", "filter", "INPUT -j REJECT --reject-with icmp-port-unreachable"),
    _c("reject-host-prohibited", "filter", "INPUT -j REJECT --reject-with icmp-host-prohibited"),
    _c("reject-admin", "filter", "INPUT -j REJECT --reject-with icmp-admin-prohibited"),
    _c("log-plain", "filter", "INPUT -j LOG"),
    _c("log-flags", "filter", 'INPUT -j LOG --log-prefix "x y  z: " --log-level 7 --log-tcp-sequence '
       "--log-tcp-options --log-ip-options --log-uid --log-macdecode"),
    _c("log-quote-in-prefix", "filter", 'INPUT -j LOG --log-prefix "quote\\"in" --log-level 1'),
    _c("log-after-match", "filter", 'INPUT -m state --state INVALID -j LOG --log-prefix "bad: "'),
    _c("nflog", "filter", 'INPUT -j NFLOG --nflog-group 5 --nflog-prefix "nf pre" --nflog-threshold 3'),
    _c("nfqueue", "filter", "INPUT -j NFQUEUE --queue-num 3 --queue-bypass"),
    _c("nfqueue-balance", "filter", "INPUT -j NFQUEUE --queue-balance 2:5"),
    _c("goto", "filter", "INPUT -g USR"),
    _c("goto-with-match", "filter", "INPUT -p tcp -m tcp --dport 22 -g USR"),
    _c("jump", "filter", "INPUT -j USR"),
    _c("no-target", "filter", "INPUT"),
    _c("no-target-proto", "filter", "INPUT -p udp"),
    _c("long-chain-name", "filter", "INPUT -j other-chain-with-long-name"),
    _c("long-chain-name-proto", "filter", "INPUT -p tcp -j other-chain-with-long-name"),
    _c("return", "filter", "USR -j RETURN"),
    _c("tcpmss-set", "filter", "FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400"),
    _c("dnat-port", "nat", "PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080"),
    _c("dnat-ranges", "nat", "PREROUTING -p tcp -m tcp --dport 81 -j DNAT "
       "--to-destination 10.0.0.1-10.0.0.5:8080-8090 --random --persistent"),
    _c("dnat-addr", "nat", "PREROUTING -d 1.2.3.4/32 -j DNAT --to-destination 10.0.0.2"),
    _c("dnat-port-only", "nat", "PREROUTING -p tcp -j DNAT --to-destination :99"),
    _c("redirect", "nat", "PREROUTING -p tcp -j REDIRECT --to-ports 8080"),
    _c("redirect-range", "nat", "PREROUTING -p tcp -j REDIRECT --to-ports 8080-8090 --random"),
    _c("redirect-bare", "nat", "PREROUTING -j REDIRECT"),
    _c("masquerade", "nat", "POSTROUTING -o eth0 -j MASQUERADE"),
    _c("masquerade-ports", "nat", "POSTROUTING -p udp -j MASQUERADE --to-ports 1024-65535 --random-fully"),
    _c("masquerade-random", "nat", "POSTROUTING -p tcp -j MASQUERADE --to-ports 1000 --random"),
    _c("snat", "nat", "POSTROUTING -s 10.0.0.0/8 -j SNAT --to-source 1.2.3.4"),
    _c("snat-range", "nat", "POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4-1.2.3.9:1000-2000 --random-fully "
       "--persistent"),
    _c("snat-random", "nat", "POSTROUTING -j SNAT --to-source 1.2.3.4 --random"),
    _c("nat-jump", "nat", "PREROUTING -m addrtype --dst-type LOCAL -j NATCHAIN"),
    _c("mark-set", "mangle", "PREROUTING -j MARK --set-mark 0x1"),
    _c("mark-xset", "mangle", "PREROUTING -j MARK --set-xmark 0x1/0xff"),
    _c("mark-or", "mangle", "PREROUTING -j MARK --or-mark 0x4000"),
    _c("mark-and", "mangle", "PREROUTING -j MARK --and-mark 0xff"),
    _c("mark-xor", "mangle", "PREROUTING -j MARK --xor-mark 0x3"),
    _c("mark-zero", "mangle", "PREROUTING -j MARK --set-mark 0x0"),
    _c("connmark-set", "mangle", "PREROUTING -j CONNMARK --set-mark 0x5"),
    _c("connmark-xset", "mangle", "PREROUTING -j CONNMARK --set-xmark 0x5/0xf"),
    _c("connmark-save", "mangle", "PREROUTING -j CONNMARK --save-mark"),
    _c("connmark-save-mask", "mangle", "PREROUTING -j CONNMARK --save-mark --mask 0xff"),
    _c("connmark-save-masks", "mangle", "PREROUTING -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xf"),
    _c("connmark-restore", "mangle", "PREROUTING -j CONNMARK --restore-mark"),
    _c("connmark-restore-mask", "mangle", "PREROUTING -j CONNMARK --restore-mark --mask 0xff"),
    _c("connmark-restore-masks", "mangle", "PREROUTING -j CONNMARK --restore-mark --ctmask 0xf0 --nfmask 0xf"),
    _c("connmark-or", "mangle", "PREROUTING -j CONNMARK --or-mark 0x8"),
    _c("connmark-and", "mangle", "PREROUTING -j CONNMARK --and-mark 0x8"),
    _c("tos-set", "mangle", "PREROUTING -j TOS --set-tos 0x10"),
    _c("tos-set-mask", "mangle", "PREROUTING -j TOS --set-tos 0x10/0x3f"),
    _c("tos-and", "mangle", "PREROUTING -j TOS --and-tos 0x0f"),
    _c("tos-or", "mangle", "PREROUTING -j TOS --or-tos 0x02"),
    _c("tos-xor", "mangle", "PREROUTING -j TOS --xor-tos 0x04"),
    _c("dscp-set", "mangle", "PREROUTING -j DSCP --set-dscp 0x0a"),
    _c("classify", "mangle", "POSTROUTING -j CLASSIFY --set-class 1:10"),
    _c("ttl-set", "mangle", "PREROUTING -j TTL --ttl-set 64"),
    _c("ttl-dec", "mangle", "PREROUTING -j TTL --ttl-dec 1"),
    _c("tcpmss-clamp", "mangle", "POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"),
    _c("checksum", "mangle", "POSTROUTING -p udp -j CHECKSUM --checksum-fill"),
    _c("trace", "raw", "PREROUTING -j TRACE"),
    _c("notrack", "raw", "PREROUTING -p udp -m udp --dport 53 -j NOTRACK"),
    _c("ct-notrack", "raw", "PREROUTING -j CT --notrack"),
    _c("ct-helper", "raw", "PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp"),
    _c("ct-zone", "raw", "PREROUTING -j CT --zone 5"),
    _c("ct-events", "raw", "PREROUTING -j CT --ctevents new,related --expevents new --zone-orig 3"),
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _run(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A scratch network namespace of this test module, always deleted afterwards."""
    missing = [t for t in ("ip", "iptables-legacy", "iptables-legacy-restore", "iptables-legacy-save", "ipset")
               if shutil.which(t) is None]
    why = "needs root" if os.geteuid() != 0 else f"needs {', '.join(missing)}" if missing else ""
    if why:
        if _in_ci():
            pytest.fail(f"iptables -L kernel test cannot run in CI: {why}")
        pytest.skip(why)
    name = f"ppl-{os.getpid()}-{next(_counter)}"
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "netns", "exec", name, "ipset", "create", "pplset", "hash:ip,port"])
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def _restore_text(table: str, rules: list[str]) -> str:
    from pktpath.model.xtables import BUILTIN_CHAINS

    lines = [f"*{table}"]
    lines += [f":{c} ACCEPT [0:0]" for c in BUILTIN_CHAINS[table]]
    lines += [f":{c} - [0:0]" for c in USER_CHAINS.get(table, [])]
    lines += [f"-A {r}" for r in rules]
    return "\n".join([*lines, "COMMIT", ""])


def _load(ns: str, table: str, rules: list[str]) -> str:
    """Load the rules; return the table as iptables-legacy-save prints it."""
    _run(["ip", "netns", "exec", ns, "iptables-legacy-restore"], _restore_text(table, rules))
    return _run(["ip", "netns", "exec", ns, "iptables-legacy-save", "-t", table])


def _listing(ns: str, table: str, flavour: str) -> str:
    return _run(["ip", "netns", "exec", ns, "iptables-legacy", "-t", table, *FLAVOURS[flavour]])


def _strip_ifaces(rule: Rule) -> Rule:
    return replace(rule, ip=replace(rule.ip, iniface="", outiface="", inv_in=False, inv_out=False))


def assert_same(got: Ruleset, notes: list[str], want: Ruleset, flavour: str, lossy: bool, source: str) -> None:
    """The listing's rules are the saved ones; where the flavour cannot carry a rule, the only
    differences are the uncertain tests the notes name."""
    assert got.tables.keys() == want.tables.keys()
    for tname, table in want.tables.items():
        mine = got.tables[tname]
        assert mine.chains.keys() == table.chains.keys()
        for cname, chain in table.chains.items():
            assert mine.chains[cname].policy == chain.policy
            assert len(mine.chains[cname].rules) == len(chain.rules), cname
            for rule, expected in zip(mine.chains[cname].rules, chain.rules, strict=True):
                assert rule.origin is not None and rule.origin.source == source
                line = rule.origin.line
                if flavour == "n":
                    assert rule.matches[-1] == UnparsedRule(iptables_list.NO_IFACE_REASON)
                    rule = replace(rule, matches=rule.matches[:-1])
                    expected = _strip_ifaces(expected)
                if lossy:
                    assert any(isinstance(m, UnparsedRule) for m in rule.matches), rule
                    assert any(f":{line}" in n or f",{line}" in n for n in notes), notes
                    assert rule.target == expected.target and rule.ip == expected.ip
                else:
                    assert rule == expected, f"{rule.text}\n  listing: {rule}\n  saved:   {expected}\n{notes}"


@pytest.mark.parametrize("flavour", list(FLAVOURS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_listing_reads_back_as_saved(netns: str, case: Case, flavour: str) -> None:
    saved = _load(netns, case.table, [case.rule])
    listing = _listing(netns, case.table, flavour)
    got, notes = iptables_list.parse(listing, "iptables-L.txt", table=case.table)
    want = iptables_save.parse(saved, "iptables-save.txt")
    assert_same(got, notes, want, flavour, flavour in case.lossy, "iptables-L.txt")
    if flavour == "n":
        assert any("no -v" in n for n in notes)


@pytest.mark.parametrize("prompts", [True, False], ids=["with-prompts", "concatenated"])
def test_all_tables_in_one_listing(netns: str, prompts: bool) -> None:
    """Every table of the cases above, listed one after the other (as ``for t in ...; do
    iptables -t $t -vnL; done`` prints them), reads back as the whole iptables-legacy-save."""
    by_table: dict[str, list[str]] = {}
    for case in CASES:
        by_table.setdefault(case.table, []).append(case.rule)
    for table, rules in by_table.items():
        _load(netns, table, rules)
    saved = _run(["ip", "netns", "exec", netns, "iptables-legacy-save"])
    text = ""
    for table in ("filter", "nat", "mangle", "raw"):
        if prompts:
            text += f"[root@host ~]# iptables -t {table} -vnL --line-numbers\n"
        text += _listing(netns, table, "nvx-lines") + "\n"
    got, notes = iptables_list.parse(text, "all.txt")
    want = iptables_save.parse(saved, "iptables-save.txt")
    assert_same(got, notes, want, "nvx-lines", False, "all.txt")
    assert notes == []
