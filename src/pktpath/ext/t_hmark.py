"""``-j HMARK`` (net/netfilter/xt_HMARK.c, hmark_tg_v4): sets skb->mark to a jhash of the
packet's (or connection's) tuple.  Not modelled: it is refused as unsupported rather than
guessed, since later mark tests would depend on the hash."""

from __future__ import annotations

from collections.abc import Sequence

from pktpath.ext.registry import Opt, ParseCtx, TargetParser, register_target
from pktpath.model.xtables import Target

OPTIONS = {"--hmark-tuple": 1, "--hmark-src-prefix": 1, "--hmark-dst-prefix": 1, "--hmark-sport-mask": 1,
           "--hmark-dport-mask": 1, "--hmark-spi-mask": 1, "--hmark-proto-mask": 1, "--hmark-rnd": 1,
           "--hmark-mod": 1, "--hmark-offset": 1, "--hmark-ct": 0}


def parse_hmark(opts: Sequence[Opt], ctx: ParseCtx) -> Target:
    raise ctx.unsupported("-j HMARK: the hash mark (jhash of the tuple with --hmark-rnd, modulo --hmark-mod) is "
                          "not modelled, so later mark tests could not be decided")


_: TargetParser = register_target("HMARK", OPTIONS)(parse_hmark)
