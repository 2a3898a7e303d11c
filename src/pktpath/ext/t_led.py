"""``-j LED`` (net/netfilter/xt_LED.c, led_tg): blinks an LED trigger and continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class LedTarget(Target):
    name: ClassVar[str] = "LED"
    trigger: str
    delay: int = 0  # -1: inf
    always_blink: bool = False

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"LED: trigger netfilter-{self.trigger} fires")
        return Verdict.CONTINUE

    def render(self) -> str:
        escaped = self.trigger.replace("\\", "\\\\").replace('"', '\\"')
        out = f'-j LED --led-trigger-id "{escaped}"'
        if self.delay > 0:
            out += f" --led-delay {self.delay}"
        elif self.delay == -1:
            out += " --led-delay inf"
        if self.always_blink:
            out += " --led-always-blink"
        return out


@register_target("LED", {"--led-trigger-id": 1, "--led-delay": 1, "--led-always-blink": 0})
def parse_led(opts: Sequence[Opt], ctx: ParseCtx) -> LedTarget:
    trigger: str | None = None
    delay = 0
    blink = False
    for o in opts:
        if o.name == "--led-trigger-id":
            trigger = o.args[0]
        elif o.name == "--led-delay":
            delay = -1 if o.args[0].lower().startswith("inf") else parse_int(o.args[0], ctx, o.name)
        else:
            blink = True
    if trigger is None:
        raise ctx.error("LED: option \"--led-trigger-id\" must be specified")
    return LedTarget(trigger, delay, blink)
