"""``-m cluster`` (net/netfilter/xt_cluster.c, cluster_mt): hashes the original source
address of the connection (jhash_1word, as the kernel does on a little-endian host) onto
``--cluster-total-nodes`` nodes and matches when that node is in the local node mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult

U32 = 0xFFFFFFFF
JHASH_INITVAL = 0xDEADBEEF


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & U32


def jhash_1word(a: int, initval: int) -> int:
    """include/linux/jhash.h: __jhash_nwords(a, 0, 0, initval + JHASH_INITVAL + (1 << 2))."""
    init = (initval + JHASH_INITVAL + 4) & U32
    a, b, c = (a + init) & U32, init, init
    c ^= b
    c = (c - _rol32(b, 14)) & U32
    a ^= c
    a = (a - _rol32(c, 11)) & U32
    b ^= a
    b = (b - _rol32(a, 25)) & U32
    c ^= b
    c = (c - _rol32(b, 16)) & U32
    a ^= c
    a = (a - _rol32(c, 4)) & U32
    b ^= a
    b = (b - _rol32(a, 14)) & U32
    c ^= b
    c = (c - _rol32(b, 24)) & U32
    return c


def cluster_node(src: int, seed: int, total: int) -> int:
    """xt_cluster_hash(): the node index (0-based) for an original source address."""
    be_as_u32 = int.from_bytes(src.to_bytes(4, "big"), "little")  # __be32 read as u32 on x86
    return (jhash_1word(be_as_u32, seed) * total) >> 32  # reciprocal_scale()


@dataclass(frozen=True, slots=True)
class ClusterMatch(Match):
    name: ClassVar[str] = "cluster"
    needs_conntrack: ClassVar[bool] = True
    total_nodes: int
    node_mask: int
    hash_seed: int
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if (skb.dst >> 28) != 0xE and skb.pkt_type == "multicast":
            skb.pkt_type = "host"  # the match mangles pkt_type for a unicast address in a multicast frame
        ct = skb.ct
        if ct is None:
            return False
        node = cluster_node(ct.orig.src, self.hash_seed, self.total_nodes)
        return bool((1 << node) & self.node_mask) ^ self.invert

    def render(self) -> str:
        return (f"-m cluster {'! ' if self.invert else ''}--cluster-local-nodemask 0x{self.node_mask:08x} "
                f"--cluster-total-nodes {self.total_nodes} --cluster-hash-seed 0x{self.hash_seed:08x}")


@register_match("cluster", {"--cluster-total-nodes": 1, "--cluster-local-node": 1, "--cluster-local-nodemask": 1,
                            "--cluster-hash-seed": 1})
def parse_cluster(opts: Sequence[Opt], ctx: ParseCtx) -> ClusterMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.invert and o.name not in ("--cluster-local-node", "--cluster-local-nodemask"):
            raise ctx.error(f"cluster: option \"{o.name}\" cannot be inverted.")
        if o.name == "--cluster-total-nodes":
            kw["total_nodes"] = parse_int(o.args[0], ctx, o.name, 1, 32)
        elif o.name == "--cluster-local-node":
            kw["node_mask"], kw["invert"] = 1 << (parse_int(o.args[0], ctx, o.name, 1, 32) - 1), o.invert
        elif o.name == "--cluster-local-nodemask":
            kw["node_mask"], kw["invert"] = parse_int(o.args[0], ctx, o.name, 1), o.invert
        else:
            kw["hash_seed"] = parse_int(o.args[0], ctx, o.name)
    for key, opt in (("total_nodes", "--cluster-total-nodes"), ("node_mask", "--cluster-local-node"),
                     ("hash_seed", "--cluster-hash-seed")):
        if key not in kw:
            raise ctx.error(f"cluster: option \"{opt}\" must be specified")
    if int(kw["node_mask"]) >> int(kw["total_nodes"]):  # type: ignore[call-overload]
        raise ctx.error("cluster: node mask cannot be higher than the total number of nodes")
    return ClusterMatch(**kw)  # type: ignore[arg-type]
