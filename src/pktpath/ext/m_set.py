"""``-m set``: is the packet in an ipset? (net/netfilter/xt_set.c, set_match_v4, and
ip_set_test() in ip_set_core.c; the lookup itself is ``pktpath.model.ipset.probe``).

The match stores only the set's name: the set comes from the snapshot at evaluation time
(``par.host.ipsets``), and the loader checks the name with ``referenced_sets()`` and
``pktpath.model.ipset.xt_reference_error`` (iptables refuses unknown sets and IPv6 sets).

Counter conditions (``--packets-gt`` ...) compare the matched entry's counters *after* this
packet is counted.  The kernel skips them when the set has no ``counters`` extension
(ip_set_match_extensions), and they are moot when no entry is found; otherwise the outcome
depends on counter values at the moment the packet arrives, which a snapshot cannot know,
so the match answers ``Uncertain`` (quoting the snapshot's values).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.errors import SnapshotInconsistent
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.ipset import IPSET_DIM_MAX, IPSET_MAXNAMELEN, Dir, Entry, PacketView, probe
from pktpath.model.xtables import Match, MatchResult, Uncertain


class CounterOp(enum.Enum):
    """enum ip_set_counter_op"""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    GT = "gt"

    def holds(self, counter: int, value: int) -> bool:
        """ip_set_match_counter()"""
        match self:
            case CounterOp.EQ:
                return counter == value
            case CounterOp.NE:
                return counter != value
            case CounterOp.LT:
                return counter < value
            case CounterOp.GT:
                return counter > value


@dataclass(frozen=True, slots=True)
class CounterCond:
    op: CounterOp
    value: int

    def render(self, what: str) -> str:
        if self.op is CounterOp.NE:
            return f"! --{what}-eq {self.value}"
        return f"--{what}-{self.op.value} {self.value}"


def mac_to_int(mac: str | None) -> int | None:
    if not mac:
        return None
    return int(mac.replace(":", "").replace("-", ""), 16)


def packet_view(skb: Skb, par: XtParams) -> PacketView:
    """What the set types' kadt functions read from this skb at this hook.

    Locally generated packets have no Ethernet header (skb_mac_header() is unset) in OUTPUT
    and POSTROUTING, so MAC dimensions fail there; forwarded packets keep the header they
    arrived with."""
    local_out = par.hook is Hook.OUTPUT or skb.iif is None
    return PacketView(
        src=skb.src, dst=skb.dst, proto=skb.proto, sport=skb.sport, dport=skb.dport,
        icmp_type=skb.icmp_type, icmp_code=skb.icmp_code,
        fragoff=par.fragoff or skb.frag_off,
        mac_src=None if local_out else mac_to_int(skb.mac_src),
        mac_dst=None if local_out else mac_to_int(skb.mac_dst),
        in_dev=par.in_dev, out_dev=par.out_dev, mark=skb.mark,
    )


def render_dirs(dirs: tuple[Dir, ...]) -> str:
    return ",".join(d.value for d in dirs)


@dataclass(frozen=True, slots=True)
class SetMatch(Match):
    name: ClassVar[str] = "set"
    set_name: str
    dirs: tuple[Dir, ...]
    invert: bool = False
    return_nomatch: bool = False
    skip_counter_update: bool = False  # ! --update-counters
    skip_subcounter_update: bool = False  # ! --update-subcounters
    packets: CounterCond | None = None
    bytes: CounterCond | None = None

    def referenced_sets(self) -> tuple[str, ...]:
        return (self.set_name,)

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        sets = par.host.ipsets
        s = sets.get(self.set_name)
        if s is None:
            raise SnapshotInconsistent(f"-m set refers to set {self.set_name!r}, which the snapshot lacks")
        p = probe(s, sets, packet_view(skb, par), self.dirs, return_nomatch=self.return_nomatch)
        if (self.packets or self.bytes) and s.opts.counters and p.counted:
            return Uncertain(self._counter_doubt(p.counted, skb.length))
        return p.matched ^ self.invert

    def _counter_doubt(self, counted: tuple[Entry, ...], length: int) -> str:
        conds = " ".join(c.render(w) for c, w in ((self.packets, "packets"), (self.bytes, "bytes")) if c)
        e = counted[0]
        bump = 0 if self.skip_counter_update else 1
        return (f"set {self.set_name}: {conds} compares live counters; at snapshot time the entry had "
                f"packets={e.packets} bytes={e.bytes} (this packet adds {bump} packet and "
                f"{length * bump} bytes)")

    def render(self) -> str:
        out = ["-m set"]
        out.append(("! " if self.invert else "") + f"--match-set {self.set_name} {render_dirs(self.dirs)}")
        if self.return_nomatch:
            out.append("--return-nomatch")
        if self.skip_counter_update:
            out.append("! --update-counters")
        if self.skip_subcounter_update:
            out.append("! --update-subcounters")
        if self.packets:
            out.append(self.packets.render("packets"))
        if self.bytes:
            out.append(self.bytes.render("bytes"))
        return " ".join(out)


def parse_dirs(text: str, ctx: ParseCtx, col: int = 0) -> tuple[Dir, ...]:
    """parse_dirs() of libxt_set.h: up to six comma-separated words starting 'src' or 'dst'."""
    dirs: list[Dir] = []
    pieces = text.split(",")
    for piece in pieces[:IPSET_DIM_MAX]:
        if piece.startswith("src"):
            dirs.append(Dir.SRC)
        elif piece.startswith("dst"):
            dirs.append(Dir.DST)
        else:
            raise ctx.error("You must spefify (the comma separated list of) 'src' or 'dst'.", col)
    if len(pieces) > IPSET_DIM_MAX:
        raise ctx.error(f"Can't be more src/dst options than {IPSET_DIM_MAX}.", col)
    return tuple(dirs)


def set_name_arg(o: Opt, ctx: ParseCtx) -> tuple[str, tuple[Dir, ...]]:
    """The NAME DIRS pair of --match-set / --add-set / --del-set / --map-set."""
    name, flags = o.args
    if flags.startswith(("-", "!")):
        raise ctx.error(f"{o.name} requires two args.", o.col)
    if len(name) > IPSET_MAXNAMELEN - 1:
        raise ctx.error(f"setname `{name}' too long, max {IPSET_MAXNAMELEN - 1} characters.", o.col)
    return name, parse_dirs(flags, ctx, o.col)


def parse_counter(o: Opt, ctx: ParseCtx) -> int:
    """xtables_strtoul(..., 0, UINT64_MAX)"""
    text = o.args[0]
    try:
        value = int(text, 16) if text[:2].lower() == "0x" else int(text, 8) if \
            len(text) > 1 and text[0] == "0" else int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= (1 << 64) - 1 or text.startswith(("+", "-")):
        raise ctx.error(f"Cannot parse {text} as a counter value", o.col)
    return value


@register_match("set", {"--match-set": 2, "--set": 2, "--return-nomatch": 0, "--update-counters": 0,
                        "--update-subcounters": 0, "--packets-eq": 1, "--packets-lt": 1,
                        "--packets-gt": 1, "--bytes-eq": 1, "--bytes-lt": 1, "--bytes-gt": 1})
def parse_set(opts: Sequence[Opt], ctx: ParseCtx) -> SetMatch:
    """libxt_set.c set_parse_v3/v4 (iptables 1.8.9), with its error messages."""
    kw: dict[str, object] = {}
    for o in opts:
        if o.name in ("--match-set", "--set"):
            if "set_name" in kw:
                raise ctx.error("--match-set can be specified only once", o.col)
            if o.name == "--set":
                ctx.warnings.append("--set option deprecated, please use --match-set")
            kw["set_name"], kw["dirs"] = set_name_arg(o, ctx)
            kw["invert"] = o.invert
        elif o.name == "--return-nomatch":
            if o.invert:
                raise ctx.error("--return-nomatch flag cannot be inverted", o.col)
            kw["return_nomatch"] = True
        elif o.name == "--update-counters":
            kw["skip_counter_update"] = o.invert or bool(kw.get("skip_counter_update"))
        elif o.name == "--update-subcounters":
            kw["skip_subcounter_update"] = o.invert or bool(kw.get("skip_subcounter_update"))
        else:
            what, op = o.name[2:].split("-")
            if what in kw:
                raise ctx.error(f"only one of the --{what}-[eq|lt|gt] is allowed", o.col)
            if o.invert and op != "eq":
                raise ctx.error(f"{o.name} option cannot be inverted", o.col)
            cop = CounterOp.NE if o.invert else CounterOp(op)
            kw[what] = CounterCond(cop, parse_counter(o, ctx))
    if "set_name" not in kw:
        raise ctx.error("You must specify `--match-set' with proper arguments")
    return SetMatch(**kw)  # type: ignore[arg-type]
