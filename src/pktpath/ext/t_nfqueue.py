"""``-j NFQUEUE`` (net/netfilter/xt_NFQUEUE.c, nfqueue_tg_v3): queue the packet to a
userspace listener (NF_QUEUE).  What a listener decides is outside the snapshot; with no
listener the kernel drops it, or -- with ``--queue-bypass`` -- accepts it and moves on to the
next hook function (nf_hook_slow: nf_queue() returns 1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict


@dataclass(frozen=True, slots=True)
class NfqueueTarget(Target):
    name: ClassVar[str] = "NFQUEUE"
    queue: int = 0
    total: int = 1
    bypass: bool = False
    cpu_fanout: bool = False

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        queues = f"queue {self.queue}" if self.total == 1 else f"queues {self.queue}-{self.queue + self.total - 1}"
        skb.notes.append(f"NFQUEUE: queued to {queues}; "
                         + ("with --queue-bypass and no listener the kernel accepts it (next hook function)"
                            if self.bypass else "with no listener the kernel drops it"))
        # No listener is visible in a snapshot: with --queue-bypass the kernel then accepts
        # the packet, skipping the rest of this table (checked on the kernel).
        return Verdict.ACCEPT if self.bypass else Verdict.QUEUE

    def render(self) -> str:
        if self.total > 1:
            out = f"-j NFQUEUE --queue-balance {self.queue}:{self.queue + self.total - 1}"
        else:
            out = f"-j NFQUEUE --queue-num {self.queue}"
        if self.bypass:
            out += " --queue-bypass"
        if self.cpu_fanout:
            out += " --queue-cpu-fanout"
        return out


@register_target("NFQUEUE", {"--queue-num": 1, "--queue-balance": 1, "--queue-bypass": 0,
                             "--queue-cpu-fanout": 0})
def parse_nfqueue(opts: Sequence[Opt], ctx: ParseCtx) -> NfqueueTarget:
    kw: dict[str, object] = {}
    for o in opts:
        if o.name == "--queue-num":
            kw["queue"] = parse_int(o.args[0], ctx, o.name, 0, 0xFFFF)
        elif o.name == "--queue-balance":
            lo, _, hi = o.args[0].partition(":")
            first = parse_int(lo, ctx, o.name, 0, 0xFFFF)
            last = parse_int(hi, ctx, o.name, 0, 0xFFFF)
            if first >= last:
                raise ctx.error(f"{first} should be less than {last}")
            kw["queue"], kw["total"] = first, last - first + 1
        elif o.name == "--queue-bypass":
            kw["bypass"] = True
        else:
            kw["cpu_fanout"] = True
    if "queue" in kw and "total" in kw and any(o.name == "--queue-num" for o in opts):
        raise ctx.error("NFQUEUE: --queue-num and --queue-balance cannot be used together")
    return NfqueueTarget(**kw)  # type: ignore[arg-type]
