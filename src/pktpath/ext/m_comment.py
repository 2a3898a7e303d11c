"""``-m comment``: always matches (net/netfilter/xt_comment.c)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult
from pktpath.parse.tokens import quote_word


@dataclass(frozen=True, slots=True)
class CommentMatch(Match):
    name: ClassVar[str] = "comment"
    comment: str

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return True

    def render(self) -> str:
        return f"-m comment --comment {quote_word(self.comment)}"


@register_match("comment", {"--comment": 1})
def parse_comment(opts: Sequence[Opt], ctx: ParseCtx) -> CommentMatch:
    if not opts:
        raise ctx.error("-m comment needs --comment TEXT")
    text = opts[-1].args[0]
    if len(text) > 255:
        raise ctx.error("comment too long: at most 255 characters")
    return CommentMatch(text)
