"""``-j LOG`` (net/netfilter/xt_LOG.c): writes a kernel log line, then continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.xtables import Target, Verdict
from pktpath.parse.tokens import quote_word

LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "err": 3, "warning": 4, "warn": 4,
          "notice": 5, "info": 6, "debug": 7, "panic": 0}
FLAGS = ("--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid", "--log-macdecode")


@dataclass(frozen=True, slots=True)
class LogTarget(Target):
    name: ClassVar[str] = "LOG"
    prefix: str = ""
    level: int = 4
    flags: tuple[str, ...] = ()

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"LOG: kernel log line with prefix {self.prefix!r} (level {self.level})")
        return Verdict.CONTINUE

    def render(self) -> str:
        out = "-j LOG"
        if self.prefix:
            out += f" --log-prefix {quote_word(self.prefix)}"
        if self.level != 4:
            out += f" --log-level {self.level}"
        return out + "".join(" " + f for f in self.flags)


@register_target("LOG", {"--log-prefix": 1, "--log-level": 1, **{f: 0 for f in FLAGS}})
def parse_log(opts: Sequence[Opt], ctx: ParseCtx) -> LogTarget:
    prefix, level, flags = "", 4, []
    for o in opts:
        if o.name == "--log-prefix":
            prefix = o.args[0]
            if len(prefix) > 29:
                raise ctx.error("--log-prefix: at most 29 characters")
        elif o.name == "--log-level":
            text = o.args[0].lower()
            if text.isdigit() and int(text) <= 7:
                level = int(text)
            elif text in LEVELS:
                level = LEVELS[text]
            else:
                raise ctx.error(f"--log-level: unknown level {o.args[0]!r}, expected 0-7 or a name")
        else:
            flags.append(o.name)
    return LogTarget(prefix, level, tuple(flags))
