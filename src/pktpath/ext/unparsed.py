"""A rule pktpath could not understand, loaded with ``--lenient``: whether it matches is
unknown, so both outcomes are followed (never assumed to match or not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class UnparsedRule(Match):
    name: ClassVar[str] = "unparsed"
    reason: str

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain(f"pktpath could not read this rule ({self.reason})")

    def render(self) -> str:
        return ""
