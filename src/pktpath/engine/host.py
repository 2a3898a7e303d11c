"""The host a packet walks through: the snapshot's state plus the services that matches and
targets call into (address types, ipsets, conntrack, NAT), as kernel extensions call
``inet_addr_type()``, ``ip_set_test()`` or ``nf_nat_setup_info()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pktpath.engine.conntrack import ConntrackTable
from pktpath.engine.nat import RANDOM_PORT, setup_info
from pktpath.engine.skb import Skb
from pktpath.model.nat import NatRange
from pktpath.model.net import NetState
from pktpath.model.xtables import Ruleset, Verdict

if TYPE_CHECKING:
    from pktpath.model.ipset import IpSet


@dataclass
class Host:
    ruleset: Ruleset
    net: NetState = field(default_factory=NetState)
    ipsets: Mapping[str, IpSet] = field(default_factory=dict)
    conntrack: ConntrackTable = field(default_factory=ConntrackTable)
    #: conntrack runs in a namespace only once a rule (or a loaded entry) needs it.
    conntrack_enabled: bool = False

    def with_conntrack(self, table: ConntrackTable) -> Host:
        """This host with another conntrack table: ``dataclasses.replace(self, conntrack=table)``
        without its per-call introspection (a walk makes one per explored path)."""
        if type(self) is not Host:
            return replace(self, conntrack=table)
        return Host(self.ruleset, self.net, self.ipsets, table, self.conntrack_enabled)

    def addr_type(self, addr: int, dev: str | None = None) -> str:
        """inet_addr_type_dev_table(): LOCAL, UNICAST, BROADCAST, MULTICAST, ..."""
        from pktpath.engine import routing

        return routing.inet_addr_type(self.net, addr, dev)

    def dev_addrs(self, dev: str) -> tuple[int, ...]:
        link = self.net.link(dev)
        return tuple(a.local for a in link.addrs) if link else ()

    def sysctl_int(self, key: str, default: int = 0) -> int:
        return self.net.sysctls.get_int(key, default)

    def nat_setup(self, skb: Skb, rng: NatRange, manip: str, what: str) -> Verdict:
        """What a NAT target asks of nf_nat_setup_info(); ends the nat table with ACCEPT."""
        if skb.ct is None:
            return Verdict.ACCEPT
        notes = setup_info(self.conntrack, skb.ct, rng, manip)
        if not notes:
            skb.notes.append(f"NAT: {what}")
            return Verdict.ACCEPT
        skb.notes.append(f"NAT: {what}" + "".join(f"; {n}" for n in notes))
        for name, prefix in RANDOM_PORT.items():
            if any(n.startswith(prefix + ": the kernel picks one at random") for n in notes):
                skb.uncertain.add(name)
        if any("drops the packet" in n for n in notes):
            return Verdict.DROP
        return Verdict.ACCEPT

    def masquerade_source(self, skb: Skb, out_dev: str) -> int | None:
        """MASQUERADE's address: the output device's, facing the route's next hop (K8)."""
        from pktpath.engine import routing

        route = skb.route
        gateway = route[1] if isinstance(route, tuple) and len(route) == 2 else None
        nexthop = gateway if isinstance(gateway, int) and gateway else skb.dst
        return routing.masquerade_source(self.net, out_dev, nexthop)
