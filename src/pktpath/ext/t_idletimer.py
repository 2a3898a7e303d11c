"""``-j IDLETIMER`` (net/netfilter/xt_IDLETIMER.c, idletimer_tg): restarts a sysfs timer
and continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class IdletimerTarget(Target):
    name: ClassVar[str] = "IDLETIMER"
    timeout: int
    label: str
    alarm: bool = False

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"IDLETIMER: timer {self.label!r} restarted ({self.timeout}s)")
        return Verdict.CONTINUE

    def render(self) -> str:
        return f"-j IDLETIMER --timeout {self.timeout} --label {self.label}" + (" --alarm" if self.alarm else "")


@register_target("IDLETIMER", {"--timeout": 1, "--label": 1, "--alarm": 0})
def parse_idletimer(opts: Sequence[Opt], ctx: ParseCtx) -> IdletimerTarget:
    timeout: int | None = None
    label: str | None = None
    alarm = False
    for o in opts:
        if o.name == "--timeout":
            timeout = parse_int(o.args[0], ctx, o.name)
        elif o.name == "--label":
            label = o.args[0]
        else:
            alarm = True
    if timeout is None or label is None:
        raise ctx.error("IDLETIMER: --timeout and --label must be specified")
    return IdletimerTarget(timeout, label, alarm)
