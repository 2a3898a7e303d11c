"""``-m cgroup`` (net/netfilter/xt_cgroup.c, cgroup_mt_v0/v1/v2): the cgroup (v2 path or
net_cls classid) of the packet's full socket.  No socket never matches, even inverted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import IPPROTO_TCP, TCP_ACK, TCP_SYN, CtInfo, Hook, Skb, XtParams
from pktpath.ext.m_helper import save_string
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain


@dataclass(frozen=True, slots=True)
class CgroupMatch(Match):
    name: ClassVar[str] = "cgroup"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.OUTPUT, Hook.POSTROUTING, Hook.INPUT})
    path: str | None = None
    classid: int | None = None
    inv_path: bool = False
    inv_classid: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if skb.sk is None:
            new_flow = skb.ctinfo == CtInfo.NEW or (
                skb.proto == IPPROTO_TCP and skb.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN)
            if par.hook == Hook.INPUT and not new_flow:
                return Uncertain("cgroup on input: early demux may have attached the established local socket "
                                 "of this flow (sockets are not in the snapshot)")
            return False  # "if (!sk || !sk_fullsock(sk)) return false": a new flow has no socket yet
        return Uncertain("cgroup: the sending process's cgroup is not in the snapshot")

    def render(self) -> str:
        out = ["-m cgroup"]
        if self.path is not None:
            out.append(("! " if self.inv_path else "") + "--path " + save_string(self.path))
        if self.classid is not None:
            out.append(("! " if self.inv_classid else "") + f"--cgroup {self.classid}")
        return " ".join(out)


@register_match("cgroup", {"--path": 1, "--cgroup": 1})
def parse_cgroup(opts: Sequence[Opt], ctx: ParseCtx) -> CgroupMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.name == "--path":
            kw["path"], kw["inv_path"] = o.args[0], o.invert
        else:
            kw["classid"], kw["inv_classid"] = parse_int(o.args[0], ctx, "--cgroup"), o.invert
    if not kw:
        raise ctx.error("cgroup: --path or --cgroup is required")
    return CgroupMatch(**kw)  # type: ignore[arg-type]
