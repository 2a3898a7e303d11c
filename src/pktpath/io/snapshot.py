"""Read a snapshot directory (or a .tar.gz of one) into a ``HostSnapshot``.

This is the only module that opens snapshot files; every parser gets ``(text, source)``."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path

from pktpath.errors import ParseError, PktpathError
from pktpath.io.facts_cache import FactsCache
from pktpath.model.ipset import IpSet, xt_reference_error
from pktpath.model.net import NetState
from pktpath.model.snapshot import HostSnapshot
from pktpath.model.xtables import Ruleset
from pktpath.parse import conntrack_list, iptables_list, iptables_save

NOT_USED_YET = {
    "ip6tables-save.txt": "IPv6 is not modelled yet: ip6tables-save.txt is not used",
    "ip6-route.json": "IPv6 is not modelled yet: ip6-route.json is not used",
    "ip6-rule.json": "IPv6 is not modelled yet: ip6-rule.json is not used",
    "ebtables-save.txt": "bridge netfilter (ebtables) is not modelled yet: ebtables-save.txt is not used",
    "nft-ruleset.json": "nftables rulesets are not modelled yet: nft-ruleset.json is not used",
    "ipvsadm-save.txt": "IPVS is not modelled yet: ipvsadm-save.txt is not used",
}


class SnapshotFiles:
    """The files of a snapshot, from a directory or a tarball, by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, str] = {}
        if path.is_dir():
            for f in path.iterdir():
                if f.is_file():
                    self.files[f.name] = str(f)
            self._texts: dict[str, str] | None = None
        elif path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
            self._texts = {}
            try:
                with tarfile.open(path) as tar:
                    for member in tar.getmembers():
                        if member.isfile():
                            fh = tar.extractfile(member)
                            if fh is not None:
                                name = member.name.rsplit("/", 1)[-1]
                                self._texts[name] = fh.read().decode("utf-8", "replace")
                                self.files[name] = f"{path}:{member.name}"
            except (tarfile.TarError, OSError, EOFError) as e:
                raise PktpathError(f"{path}: not a readable snapshot tarball ({e})") from None
        elif not path.exists():
            raise PktpathError(f"{path}: no such snapshot directory or .tar.gz")
        else:
            raise PktpathError(f"{path}: expected a snapshot directory or a .tar.gz of one")

    def has(self, name: str) -> bool:
        return name in self.files

    def source(self, name: str) -> str:
        return self.files.get(name, str(self.path / name))

    def text(self, name: str) -> str | None:
        if name not in self.files:
            return None
        if self._texts is not None:
            return self._texts[name]
        try:
            return Path(self.files[name]).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise PktpathError(f"{self.files[name]}: cannot read ({e.strerror})") from None


def load_snapshot(path: str | Path, lenient: bool = False, jobs: int | None = None) -> HostSnapshot:
    """Load every file the snapshot has.  ``lenient``: rules pktpath cannot read are kept
    as uncertain rules (both outcomes followed) and listed in the notes.  ``jobs``: processes
    that validate a large ruleset (default: the CPUs, at most 2)."""
    files = SnapshotFiles(Path(path))
    notes = [msg for name, msg in NOT_USED_YET.items() if files.has(name)]
    ruleset = _ruleset(files, lenient, notes, jobs)
    net = load_net_state(files)
    ipsets = {}
    ipset_text = files.text("ipset-save.txt")
    if ipset_text is not None and ipset_text.strip():
        from pktpath.parse import ipset_save

        ipsets = dict(ipset_save.parse(ipset_text, files.source("ipset-save.txt")))
    _check_sets(ruleset, ipsets)
    ct_text = files.text("conntrack.txt")
    conntrack = conntrack_list.parse(ct_text, files.source("conntrack.txt")) if ct_text else ()
    return HostSnapshot(ruleset, net, ipsets, conntrack, str(path), tuple(notes))


def _ruleset(files: SnapshotFiles, lenient: bool = False, notes: list[str] | None = None,
             jobs: int | None = None) -> Ruleset:
    """iptables-save.txt (iptables-save or iptables -S text); an ``iptables -L -n -v`` listing
    there or in iptables-L.txt is rebuilt as far as it carries the rules, with notes on the rest."""
    name = "iptables-save.txt" if files.has("iptables-save.txt") else "iptables-L.txt"
    text = files.text(name)
    if text is None:
        if files.has("nft-ruleset.json"):
            raise PktpathError(f"{files.path}: only nft-ruleset.json is present; nftables rulesets are not "
                               "modelled yet (give iptables-save.txt)")
        raise PktpathError(f"{files.path}: no iptables-save.txt (required, see the snapshot format)")
    if iptables_list.looks_like_listing(text):
        ruleset, lost = iptables_list.parse(text, files.source(name))
        if notes is not None:
            notes.append(f"{name} is an 'iptables -L' listing: rules rebuilt from it; what it does not show "
                         "is uncertain")
            notes.extend(lost)
        return ruleset
    cache = FactsCache.for_source(files.source(name))
    ruleset = iptables_save.parse(text, files.source(name), lenient, notes, facts_cache=cache,
                                  jobs=min(2, os.cpu_count() or 1) if jobs is None else jobs)
    cache.save()
    return ruleset


def load_net_state(files: SnapshotFiles) -> NetState:
    from pktpath.parse import iproute_json, sysctl

    kw: dict[str, object] = {}
    addr_text = files.text("ip-addr.json")
    link_text = files.text("ip-link.json")
    links = iproute_json.parse_addrs(addr_text, files.source("ip-addr.json")) if addr_text is not None else ()
    if link_text is not None:
        links = iproute_json.merge_links(links, link_text, files.source("ip-link.json"))
    kw["links"] = links
    route_text = files.text("ip-route.json")
    routes = iproute_json.parse_routes(route_text, files.source("ip-route.json")) if route_text is not None else ()
    kw["routes"] = iproute_json.complete_routes(routes, links)
    rule_text = files.text("ip-rule.json")
    if rule_text is not None:
        kw["rules"] = iproute_json.parse_rules(rule_text, files.source("ip-rule.json"))
    sysctl_text = files.text("sysctl.txt")
    if sysctl_text is not None:
        kw["sysctls"] = sysctl.parse_sysctl(sysctl_text, files.source("sysctl.txt"))
    return NetState(**kw)  # type: ignore[arg-type]


def _check_sets(ruleset: Ruleset, ipsets: Mapping[str, IpSet]) -> None:
    """Refuse a rule naming a set the snapshot lacks, as iptables does when loading it."""
    named = _named_sets(ruleset)
    if named is not None and all(xt_reference_error(ipsets, n) is None for n in named):
        return  # (else the rules are read to name the first one, as before)
    for table in ruleset.tables.values():
        for chain in table.chains.values():
            for rule in chain.rules:
                for ext in (*rule.matches, rule.target):
                    for name in getattr(ext, "referenced_sets", lambda: ())():
                        msg = xt_reference_error(ipsets, name)
                        if msg is not None:
                            loc = rule.origin
                            raise ParseError(loc.source if loc else ruleset.source, loc.line if loc else 0,
                                             f"{msg} (the kernel refuses the rule)", rule.text)


def _named_sets(ruleset: Ruleset) -> set[str] | None:
    """The set names the rules reference, from the tables' facts (None: a table has none)."""
    names: set[str] = set()
    for table in ruleset.tables.values():
        if table.facts is None:
            return None
        names.update(table.facts.sets)
    return names


def read_json_file(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(source, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})") from None
