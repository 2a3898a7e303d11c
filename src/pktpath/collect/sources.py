"""What ``pktpath collect`` runs, as data: one row per snapshot file (shared/spec/snapshot.md).

Pure: no I/O here.  ``run.py`` executes these rows; ``shell_script()`` renders the same
rows as plain ``sh`` for an operator who has no pktpath on the host.  Both read the same
table, so the files they write cannot drift apart.

The iptables dumps are special: a host can have rules under the legacy backend
(``ip_tables`` kernel tables, listed in ``/proc/net/ip_tables_names``), under the
nf_tables backend, or both.  The legacy dump wins when legacy tables exist (that is the
backend pktpath's TRACE numbering models); otherwise the distribution's default
``iptables-save`` is used.  When both backends hold rules the other dump is kept as
``iptables-nft-save.txt`` too.  ``backends.txt`` records, per dump, the ``--version``
line of the tool that wrote it: ``iptables-save v1.8.9 (legacy)`` or ``(nf_tables)``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

# sysctl keys (or key prefixes: sysctl prints every key below a directory) that decide a
# packet's path: forwarding, rp_filter, accept_local, route_localnet... per interface,
# conntrack behaviour, bridge-nf-call-iptables.  ``sysctl -e`` skips the absent ones.
SYSCTL_KEYS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf",
    "net.ipv4.ip_nonlocal_bind",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.fwmark_reflect",
    "net.ipv4.tcp_fwmark_accept",
    "net.ipv4.icmp_echo_ignore_all",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.netfilter",
    "net.bridge",
    "net.ipv6.conf.all.forwarding",
    "net.core.devconf_inherit_init_net",
)


@dataclass(frozen=True)
class Source:
    """One snapshot file and the standard command whose unmodified output it is."""

    file: str
    argv: tuple[str, ...]
    what: str

    @property
    def tool(self) -> str:
        return self.argv[0]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class XtablesDump:
    """An ``*tables-save`` dump whose backend (legacy / nf_tables) must be recorded."""

    file: str
    default: str  # the distribution's choice (alternatives): iptables-save
    legacy: str | None  # iptables-legacy-save
    nft: str | None  # iptables-nft-save
    legacy_names: str | None  # /proc file listing legacy tables in the namespace
    what: str

    @property
    def nft_file(self) -> str:
        return self.file.replace("-save.txt", "-nft-save.txt")


XTABLES: tuple[XtablesDump, ...] = (
    XtablesDump("iptables-save.txt", "iptables-save", "iptables-legacy-save", "iptables-nft-save",
                "/proc/net/ip_tables_names", "IPv4 iptables rules"),
    XtablesDump("ip6tables-save.txt", "ip6tables-save", "ip6tables-legacy-save", "ip6tables-nft-save",
                "/proc/net/ip6_tables_names", "IPv6 ip6tables rules"),
    # Legacy ebtables has no table list in /proc; only the default tool is run, and only
    # when it is the nf_tables one or the ebtables module is already loaded.
    XtablesDump("ebtables-save.txt", "ebtables-save", None, None, None, "bridge ebtables rules"),
)

SOURCES: tuple[Source, ...] = (
    Source("ipset-save.txt", ("ipset", "save"), "ipsets"),
    Source("nft-ruleset.json", ("nft", "-j", "list", "ruleset"), "nftables ruleset"),
    Source("ip-addr.json", ("ip", "-j", "addr", "show"), "addresses"),
    Source("ip-link.json", ("ip", "-j", "-d", "link", "show"), "interfaces"),
    Source("ip-route.json", ("ip", "-j", "route", "show", "table", "all"), "IPv4 routes, all tables"),
    Source("ip6-route.json", ("ip", "-6", "-j", "route", "show", "table", "all"), "IPv6 routes, all tables"),
    Source("ip-rule.json", ("ip", "-j", "rule", "show"), "IPv4 policy-routing rules"),
    Source("ip6-rule.json", ("ip", "-6", "-j", "rule", "show"), "IPv6 policy-routing rules"),
    Source("sysctl.txt", ("sysctl", "-e", *SYSCTL_KEYS), "routing and netfilter sysctls"),
    Source("ipvsadm-save.txt", ("ipvsadm", "-Sn"), "IPVS services"),
    Source("conntrack.txt", ("conntrack", "-L"), "conntrack table"),
)

UNAME = Source("uname.txt", ("uname", "-a"), "kernel version")
BACKENDS_FILE = "backends.txt"
MANIFEST_FILE = "collect.json"


def _has_tables(dump: XtablesDump) -> str:
    assert dump.legacy_names is not None and dump.legacy is not None
    # /proc files report size 0, so test for content with grep, not [ -s ].
    return f"grep -q . {dump.legacy_names} 2>/dev/null && command -v {dump.legacy} >/dev/null 2>&1"


def _save(tool: str, file: str) -> list[str]:
    return [f"{tool} > {file} && echo \"{file} $({tool} --version 2>&1 | head -n 1)\" >> {BACKENDS_FILE}"]


def _xtables_lines(dump: XtablesDump) -> list[str]:
    if dump.legacy is None or dump.nft is None:
        return [f"if command -v {dump.default} >/dev/null 2>&1; then",
                *("  " + line for line in _save(dump.default, dump.file)), "fi"]
    nft_has_rules = f"command -v {dump.nft} >/dev/null 2>&1 && {dump.nft} 2>/dev/null | grep -q '^\\*'"
    return [
        f"if {_has_tables(dump)}; then",
        *("  " + line for line in _save(dump.legacy, dump.file)),
        f"  if {nft_has_rules}; then",
        *("    " + line for line in _save(dump.nft, dump.nft_file)),
        "  fi",
        f"elif command -v {dump.default} >/dev/null 2>&1; then",
        *("  " + line for line in _save(dump.default, dump.file)),
        "fi",
    ]


def shell_script(out: str, netns: str | None = None) -> str:
    """Plain ``sh`` that writes the same files ``pktpath collect`` writes (but collect.json)."""
    head = [
        "#!/bin/sh",
        "# pktpath collect, by hand: read-only; run as root.  Optional tools that are absent are skipped.",
    ]
    if netns:
        head.append(f"# For the network namespace {netns}, run this script as: ip netns exec {netns} sh SCRIPT")
    lines = [*head, f"mkdir -p {shlex.quote(out)} && cd {shlex.quote(out)} || exit 1", f": > {BACKENDS_FILE}",
             f"{UNAME.command} > {UNAME.file}"]
    for dump in XTABLES:
        lines += _xtables_lines(dump)
    for src in SOURCES:
        lines.append(f"command -v {src.tool} >/dev/null 2>&1 && {src.command} > {src.file}")
    return "\n".join(lines) + "\n"


def version_backend(version_line: str) -> str:
    """``iptables-save v1.8.9 (nf_tables)`` -> nf_tables; ``(legacy)`` or no tag (before 1.8) -> legacy."""
    if "(nf_tables)" in version_line:
        return "nf_tables"
    return "legacy"


def has_tables(save_output: str) -> bool:
    """Does an ``*tables-save`` dump hold at least one table?"""
    return any(line.startswith("*") for line in save_output.splitlines())
