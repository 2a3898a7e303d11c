"""``-m mac --mac-source`` (net/netfilter/xt_mac.c, mac_mt): the Ethernet source address.

Only an Ethernet device has one: on lo the match fails even when inverted."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult

MAC_RE = re.compile(r"^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$")
HOOKS = frozenset({Hook.PREROUTING, Hook.INPUT, Hook.FORWARD})


@dataclass(frozen=True, slots=True)
class MacMatch(Match):
    name: ClassVar[str] = "mac"
    hooks: ClassVar[frozenset[Hook]] = HOOKS
    mac: str
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if skb.iif in (None, "lo") or skb.mac_src is None:
            return False
        return (skb.mac_src.lower() == self.mac) ^ self.invert

    def render(self) -> str:
        return f"-m mac {'! ' if self.invert else ''}--mac-source {self.mac.upper()}"


@register_match("mac", {"--mac-source": 1})
def parse_mac(opts: Sequence[Opt], ctx: ParseCtx) -> MacMatch:
    if not opts:
        raise ctx.error("-m mac needs --mac-source XX:XX:XX:XX:XX:XX")
    o = opts[-1]
    if not MAC_RE.match(o.args[0]):
        raise ctx.error(f"--mac-source: bad MAC address {o.args[0]!r}, expected XX:XX:XX:XX:XX:XX")
    mac = ":".join(f"{int(x, 16):02x}" for x in o.args[0].split(":"))
    return MacMatch(mac, o.invert)
