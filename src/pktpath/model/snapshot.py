"""A host snapshot: everything pktpath knows of one host, with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pktpath.model.conntrack import CtEntry
from pktpath.model.net import NetState
from pktpath.model.xtables import Ruleset

if TYPE_CHECKING:
    from pktpath.model.ipset import IpSet


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    ruleset: Ruleset
    net: NetState
    ipsets: Mapping[str, IpSet] = field(default_factory=dict)
    conntrack: tuple[CtEntry, ...] = ()  # conntrack -L
    source: str = ""
    #: plain-words notes on what the snapshot holds but pktpath does not use (yet)
    notes: tuple[str, ...] = ()
