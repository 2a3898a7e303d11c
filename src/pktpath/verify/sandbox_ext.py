"""What verify adds around ``pktpath.sandbox``: nfacct objects, stand-ins, trust in a run.

The sandbox (``pktpath.sandbox``) is the one builder, shared with the test suite.  verify
only

1. creates the nfacct objects a ruleset names before the ruleset is loaded (a
   ``-m nfacct`` rule does not load without them; kube-proxy writes such rules);
2. says what the rebuilt host stands in for or leaves out, reading the snapshot files,
   and which of that may decide this packet's path (then a difference is inconclusive);
3. reads the mark of kernel lines that quote an ICMP payload where nf_log prints it
   (``repair_marks``: the sandbox's line parser stops at the quote).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pktpath.sandbox import KernelRun, Sandbox, SandboxError
from pktpath.sandbox.netns import NetNS
from pktpath.sandbox.ruleset import TRACE_CHAINS, with_trace

NFACCT_NAME = re.compile(r"--nfacct-name\s+(\"[^\"]*\"|'[^']*'|\S+)")

# sysctls that decide a packet's path (a sandbox that could not write one of them cannot
# be trusted to disagree); other keys (counters, conntrack sizes, timeouts) do not.
PATH_SYSCTLS = re.compile(
    r"^net\.ipv4\.(ip_forward|conf\.[^.]+\.(forwarding|rp_filter|accept_local|route_localnet|src_valid_mark"
    r"|bc_forwarding|proxy_arp|arp_\w+|send_redirects|accept_redirects))$"
    r"|^net\.netfilter\.nf_conntrack_(tcp_loose|tcp_be_liberal|checksum|tcp_ignore_invalid_rst)$")
SYSCTL_WARNING = re.compile(r"^sysctl (\S+?)=")


def nfacct_objects(iptables_save: str) -> list[str]:
    """Names of the nfacct objects the ruleset's ``-m nfacct --nfacct-name`` rules use."""
    names: list[str] = []
    for m in NFACCT_NAME.finditer(iptables_save):
        name = shlex.split(m.group(1))[0] if m.group(1)[0] in "\"'" else m.group(1)
        if name not in names:
            names.append(name)
    return names


class VerifySandbox(Sandbox):
    """``Sandbox`` that creates the ruleset's nfacct objects in the host namespace first."""

    def __init__(self, snapshot: Path, *, peer_macs: Mapping[str, str] | None = None,
                 nfacct: Sequence[str] = ()) -> None:
        super().__init__(snapshot, peer_macs=peer_macs)
        self.nfacct = list(nfacct)

    def _create_ns(self, name: str) -> NetNS:
        first = not self._namespaces
        ns = super()._create_ns(name)
        if first and self.nfacct:  # the host namespace: before the ruleset is loaded
            if shutil.which("nfacct") is None:
                raise SandboxError("the ruleset uses -m nfacct; creating its objects needs the nfacct tool "
                                   "(Debian package nfacct)")
            for obj in self.nfacct:
                ns.exec(["nfacct", "add", obj])
        return ns


def strip_own_trace_rule(iptables_save: str, local: bool) -> bool:
    """Does the snapshot already start raw PREROUTING/OUTPUT with ``-j TRACE``?

    Then the sandbox loads it unchanged and the kernel does not log that rule (it switches
    tracing on), while pktpath does: its entry is dropped before comparing.
    """
    _, insertion = with_trace(iptables_save)
    chain = TRACE_CHAINS[1] if local else TRACE_CHAINS[0]
    return not insertion.synthetic_raw and chain not in insertion.inserted


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _nft_has_own_rules(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    items = data.get("nftables", [])
    return any(isinstance(i, dict) and ("rule" in i or "chain" in i) for i in items)


def stand_ins(root: Path, iif: str | None, nfacct: Sequence[str]) -> tuple[list[str], list[str]]:
    """(stand-ins, decisive) for a snapshot directory: what the sandbox builds instead of
    the real thing, and which of those may decide this packet's fate."""
    notes = ["every interface is rebuilt as one end of a veth pair whose far end is a namespace "
             "answering ARP for any address; the conntrack table starts empty"]
    decisive: list[str] = []
    links = _json(root / "ip-link.json") or _json(root / "ip-addr.json") or []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("ifname") == "lo":
            continue
        name = str(link.get("ifname"))
        kind = (link.get("linkinfo") or {}).get("info_kind") if isinstance(link.get("linkinfo"), dict) else None
        if kind and kind != "veth":
            notes.append(f"{name} ({kind}) stands in as a veth")
            if kind in ("bridge", "vrf", "bond", "team") and name == iif:
                decisive.append(f"the packet arrives on {name}, a {kind} the sandbox cannot reproduce")
        if "master" in link:
            notes.append(f"{name} is a port of {link['master']}: the sandbox does not enslave it")
            if name == iif:
                decisive.append(f"the packet arrives on {name}, a port of {link['master']} (bridging / "
                                f"master device not reproduced)")
    ct = root / "conntrack.txt"
    if ct.exists():
        entries = sum(1 for line in ct.read_text(errors="replace").splitlines() if "src=" in line)
        if entries:
            notes.append(f"conntrack.txt has {entries} entries: not loaded; pktpath's prediction also starts "
                         "from an empty conntrack table")
    if _nft_has_own_rules(_json(root / "nft-ruleset.json")):
        notes.append("nft-ruleset.json holds nftables chains: not loaded into the sandbox (pktpath does not "
                     "model them either)")
    for name, what in (("ebtables-save.txt", "ebtables rules"), ("ipvsadm-save.txt", "IPVS services")):
        path = root / name
        if path.exists() and any(line.startswith(("-A", "-a")) for line in path.read_text().splitlines()):
            notes.append(f"{name}: {what} are not reproduced")
    backends = root / "backends.txt"
    if backends.exists() and any(line.startswith("iptables-save.txt ") and "nf_tables" in line
                                 for line in backends.read_text().splitlines()):
        notes.append("iptables-save.txt was dumped from the nf_tables backend; the sandbox loads the same rules "
                     "with iptables-legacy (TRACE lines in the legacy format pktpath models)")
    if nfacct:
        notes.append("created nfacct objects " + ", ".join(nfacct) + " (rules with -m nfacct load only once "
                     "they exist)")
    return notes, decisive


def split_warnings(warnings: Sequence[str]) -> tuple[list[str], list[str]]:
    """Sandbox warnings -> (may decide the path, harmless): failed writes of sysctls that are
    counters or sizes do not matter; missing routes, rules, links and path sysctls do."""
    relevant: list[str] = []
    harmless: list[str] = []
    for w in warnings:
        m = SYSCTL_WARNING.match(w)
        if m and not PATH_SYSCTLS.match(m.group(1)):
            harmless.append(w)
        else:
            relevant.append(w)
    return relevant, harmless


def local_addresses(root: Path) -> list[ipaddress.IPv4Network]:
    """The host's own addresses (ip-addr.json) and ``local`` routes (ip-route.json)."""
    nets: list[ipaddress.IPv4Network] = []
    addrs = _json(root / "ip-addr.json")
    for link in addrs if isinstance(addrs, list) else []:
        for a in link.get("addr_info", []) if isinstance(link, dict) else []:
            if isinstance(a, dict) and a.get("family") == "inet" and "local" in a:
                nets.append(ipaddress.IPv4Network(str(a["local"])))
    routes = _json(root / "ip-route.json")
    for r in routes if isinstance(routes, list) else []:
        if isinstance(r, dict) and r.get("type") == "local" and r.get("dst") not in (None, "default"):
            try:
                nets.append(ipaddress.IPv4Network(str(r["dst"]), strict=False))
            except ValueError:
                continue
    return nets


def send_limitations(root: Path, local: bool, src: str | None) -> list[str]:
    """What the sandbox's way of sending cannot reproduce for this packet.

    Local packets leave a raw ``IP_HDRINCL`` socket; the kernel lets such sockets use any
    source address (``inet_sk_flowi_flags()``: ``FLOWI_FLAG_ANYSRC``), where a process's
    ordinary socket cannot send from an address the host does not own.
    """
    if not local or not src:
        return []
    try:
        ip = ipaddress.IPv4Address(src)
    except ValueError:
        return []
    if ip.is_unspecified or any(ip in n for n in local_addresses(root)):
        return []
    return [f"--local --src {src}: not an address of this host; the sandbox's raw socket may send from any "
            "source (FLOWI_FLAG_ANYSRC), an ordinary socket cannot"]


def meaningful_note(root: Path, note: str) -> bool:
    """Drop pktpath's "file X is not used" notes when X holds nothing."""
    m = re.search(r"([\w.-]+\.(?:txt|json)) is not used", note)
    if not m:
        return True
    path = root / m.group(1)
    if path.name.startswith("ip6"):
        return False  # the packet is IPv4: IPv6 files cannot change its path
    if not path.exists():
        return False
    text = path.read_text(errors="replace")
    if path.suffix == ".json":
        data = _json(path)
        if isinstance(data, dict):
            return _nft_has_own_rules(data)
        return bool(data)
    return any(line.startswith(("-A", "-a")) for line in text.splitlines())


MARK_FIELD = re.compile(r" MARK=(0x[0-9a-fA-F]+)")


def repair_marks(run: KernelRun) -> tuple[KernelRun, bool]:
    """Read each TRACE line's mark where nf_log prints it: last, after any bracketed part.

    nf_log_dump_packet_common() prints ``MARK=`` after the IPv4 dump, and the dump of an
    ICMP error quotes the offending packet in ``[...]`` (or says ``INCOMPLETE [8 bytes]``).
    The sandbox's line parser stops at the first ``[``, so on those lines it reads no mark
    (0).  Returns the run with marks read from the tail, and whether anything changed.
    """
    trace: list[dict[str, Any]] = []
    changed = False
    for entry in run.trace:
        log = str(entry.get("log") or "")
        if "[" in log and "]" in log:
            m = MARK_FIELD.search(log[log.rfind("]"):])
            mark = int(m.group(1), 16) if m else 0
            if mark != entry.get("mark"):
                entry = {**entry, "mark": mark}
                changed = True
        trace.append(entry)
    if not changed:
        return run, False
    result = dict(run.result)
    packet = result.get("packet")
    if result.get("disposition") != "local" and isinstance(packet, dict) and "mark" in packet and trace:
        result["packet"] = {**packet, "mark": trace[-1]["mark"]}
    return dataclasses.replace(run, trace=trace, result=result), True
