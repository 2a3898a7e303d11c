"""``-j TCPMSS`` (net/netfilter/xt_TCPMSS.c, tcpmss_tg4): rewrites (or adds) the MSS option
of a TCP SYN.  The kernel loads it only in a rule that matches SYNs (``-p tcp`` with a tcp
match testing SYN) and ``--clamp-mss-to-pmtu`` only in FORWARD/OUTPUT/POSTROUTING.  TCP
options are not in a packet description, so it records a note and continues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_SYN, Hook, Skb, XtParams
from pktpath.ext.m_tcp import parse_flags
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_target
from pktpath.model.xtables import Target, Verdict
from pktpath.parse.tokens import split_words

CLAMP_HOOKS = frozenset({Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING})


@dataclass(frozen=True, slots=True)
class TcpmssTarget(Target):
    name: ClassVar[str] = "TCPMSS"
    mss: int | None = None  # None: --clamp-mss-to-pmtu

    def valid_hooks(self) -> frozenset[Hook] | None:
        return CLAMP_HOOKS if self.mss is None else None

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        if skb.tcp_flags & TCP_SYN and not par.fragoff:
            what = "the path MTU minus 40" if self.mss is None else str(self.mss)
            skb.notes.append(f"TCPMSS: the SYN's MSS option is lowered to {what} (added if missing); "
                             "TCP options are not simulated")
        return Verdict.CONTINUE

    def render(self) -> str:
        return "-j TCPMSS --clamp-mss-to-pmtu" if self.mss is None else f"-j TCPMSS --set-mss {self.mss}"


def has_syn_match(text: str) -> bool:
    """find_syn_match(): a tcp match whose --tcp-flags compare value has SYN, not inverted."""
    try:
        words = [w.text for w in split_words(text)]
    except Exception:  # noqa: BLE001 - an unparsable rule is reported by the rule parser
        return True
    for i, w in enumerate(words):
        inverted = i > 0 and words[i - 1] == "!"
        if w == "--syn" and not inverted:
            return True
        if w == "--tcp-flags" and not inverted and i + 2 < len(words):
            try:
                return bool(parse_flags(words[i + 2], None) & TCP_SYN)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001
                return False
    return False


@register_target("TCPMSS", {"--set-mss": 1, "--clamp-mss-to-pmtu": 0})
def parse_tcpmss_target(opts: Sequence[Opt], ctx: ParseCtx) -> TcpmssTarget:
    if len(opts) != 1:
        raise ctx.error("TCPMSS: exactly one of --set-mss or --clamp-mss-to-pmtu is required")
    if ctx.proto != IPPROTO_TCP or ctx.inv_proto:
        raise ctx.error("TCPMSS: needs '-p tcp' (the kernel refuses it otherwise)")
    if not has_syn_match(ctx.text):
        raise ctx.error("TCPMSS: only works on TCP SYN packets: the rule needs --syn or --tcp-flags with SYN "
                        "set (the kernel refuses it otherwise)")
    o = opts[0]
    if o.name == "--set-mss":
        return TcpmssTarget(parse_int(o.args[0], ctx, o.name, 0, 0xFFFF))
    if ctx.chain in ("PREROUTING", "INPUT"):
        raise ctx.error("TCPMSS: path-MTU clamping only supported in FORWARD, OUTPUT and POSTROUTING hooks")
    return TcpmssTarget(None)
