"""``-j NFLOG`` (net/netfilter/xt_NFLOG.c, nflog_tg): hands a copy to nfnetlink_log and
continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.m_helper import save_string
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict

DEFAULT_THRESHOLD = 1  # XT_NFLOG_DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class NflogTarget(Target):
    name: ClassVar[str] = "NFLOG"
    group: int = 0
    prefix: str = ""
    length: int = 0
    copy_len: bool = False  # --nflog-size (XT_NFLOG_F_COPY_LEN) rather than the old --nflog-range
    threshold: int = DEFAULT_THRESHOLD

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        skb.notes.append(f"NFLOG: copy sent to nflog group {self.group}"
                         + (f" with prefix {self.prefix!r}" if self.prefix else ""))
        return Verdict.CONTINUE

    def render(self) -> str:
        out = "-j NFLOG"
        if self.prefix:
            out += f" --nflog-prefix {save_string(self.prefix)}"
        if self.group:
            out += f" --nflog-group {self.group}"
        if self.copy_len:
            out += f" --nflog-size {self.length}"
        elif self.length:
            out += f" --nflog-range {self.length}"
        if self.threshold != DEFAULT_THRESHOLD:
            out += f" --nflog-threshold {self.threshold}"
        return out


@register_target("NFLOG", {"--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1,
                           "--nflog-threshold": 1})
def parse_nflog(opts: Sequence[Opt], ctx: ParseCtx) -> NflogTarget:
    kw: dict[str, object] = {}
    for o in opts:
        a = o.args[0]
        if o.name == "--nflog-group":
            kw["group"] = parse_int(a, ctx, o.name, 0, 0xFFFF)
        elif o.name == "--nflog-prefix":
            if len(a) > 63:
                raise ctx.error("NFLOG: --nflog-prefix is longer than 63 characters")
            kw["prefix"] = a
        elif o.name == "--nflog-range":
            kw["length"] = parse_int(a, ctx, o.name)
        elif o.name == "--nflog-size":
            kw["length"], kw["copy_len"] = parse_int(a, ctx, o.name), True
        else:
            kw["threshold"] = parse_int(a, ctx, o.name, 1, 0xFFFF)
    return NflogTarget(**kw)  # type: ignore[arg-type]
