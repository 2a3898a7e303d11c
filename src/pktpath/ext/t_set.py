"""``-j SET``: add the packet to a set, delete it from one, or copy a set entry's skbinfo
to the packet (net/netfilter/xt_set.c, set_target_v3).  Always XT_CONTINUE.

A simulation walks one packet through a frozen snapshot, so ``--add-set``/``--del-set`` do
not change the sets: the target records what it would do in ``skb.notes``.  ``--map-set``
tests the set like ``-m set`` and, when the packet is in it, applies the entry's skbinfo:
``skb->mark = (skb->mark & ~skbmarkmask) ^ skbmark`` for ``--map-mark``; priority and queue
mapping are noted (the packet model has no such fields).  Linux 6.18 accepts ``--map-set``
only in the mangle table, and ``--map-prio``/``--map-queue`` only from FORWARD, OUTPUT and
POSTROUTING (set_target_v3_checkentry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.errors import SnapshotInconsistent
from pktpath.ext.m_set import packet_view, render_dirs, set_name_arg
from pktpath.ext.registry import Opt, ParseCtx, register_target
from pktpath.model.ipset import Dir, IpSet, PacketView, SkbInfo, packet_element, probe
from pktpath.model.xtables import Target, Verdict
from pktpath.parse.ipset_save import render_elem

#: set_target_v3_checkentry(): --map-prio/--map-queue only from these hooks
MAP_PRIO_QUEUE_HOOKS = frozenset({"FORWARD", "OUTPUT", "POSTROUTING"})
IPSET_NO_TIMEOUT = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class SetRef:
    """``NAME src,dst`` of --add-set / --del-set / --map-set."""

    set_name: str
    dirs: tuple[Dir, ...]

    def render(self) -> str:
        return f"{self.set_name} {render_dirs(self.dirs)}"


@dataclass(frozen=True, slots=True)
class SetTarget(Target):
    name: ClassVar[str] = "SET"
    add_set: SetRef | None = None
    del_set: SetRef | None = None
    map_set: SetRef | None = None
    exist: bool = False
    timeout: int | None = None
    map_mark: bool = False
    map_prio: bool = False
    map_queue: bool = False

    def referenced_sets(self) -> tuple[str, ...]:
        return tuple(r.set_name for r in (self.add_set, self.del_set, self.map_set) if r)

    @property
    def allowed_hooks(self) -> frozenset[str] | None:
        """Hooks the kernel accepts this rule from (None: any); for rules in user chains the
        loader checks the hooks that reach them."""
        return MAP_PRIO_QUEUE_HOOKS if self.map_set and (self.map_prio or self.map_queue) else None

    def target(self, skb: Skb, par: XtParams) -> Verdict:
        sets = par.host.ipsets
        pv = packet_view(skb, par)
        if self.add_set:
            s = self._set(sets, self.add_set)
            extra = ""
            if self.timeout is not None:
                extra += f" with timeout {min(self.timeout, 2147483)}"
            if self.exist:
                extra += " (--exist: refreshing the entry if present)"
            skb.notes.append(f"SET: would add {self._elem(s, pv, self.add_set)} to {s.name}{extra}")
        if self.del_set:
            s = self._set(sets, self.del_set)
            skb.notes.append(f"SET: would delete {self._elem(s, pv, self.del_set)} from {s.name}")
        if self.map_set:
            s = self._set(sets, self.map_set)
            p = probe(s, sets, pv, self.map_set.dirs)
            if not p.matched:
                skb.notes.append(f"SET: --map-set {s.name}: packet not in the set, nothing mapped")
                return Verdict.CONTINUE
            info = p.skbinfo or SkbInfo()
            if self.map_mark:
                skb.mark = ((skb.mark & ~info.mask) ^ info.mark) & 0xFFFFFFFF
                skb.notes.append(f"SET: --map-mark from {p.set_name}: mark {info.mark:#x}/{info.mask:#x} "
                                 f"-> skb mark {skb.mark:#x}")
            if self.map_prio:
                skb.notes.append(f"SET: --map-prio from {p.set_name}: would set priority "
                                 f"{info.prio >> 16:x}:{info.prio & 0xFFFF:x}")
            if self.map_queue:
                skb.notes.append(f"SET: --map-queue from {p.set_name}: would set queue mapping {info.queue} "
                                 "(if the output device has that many TX queues)")
        return Verdict.CONTINUE

    @staticmethod
    def _set(sets: Mapping[str, IpSet], ref: SetRef) -> IpSet:
        s = sets.get(ref.set_name)
        if s is None:
            raise SnapshotInconsistent(f"-j SET refers to set {ref.set_name!r}, which the snapshot lacks")
        return s

    @staticmethod
    def _elem(s: IpSet, pv: PacketView, ref: SetRef) -> str:
        elem = packet_element(s, pv, ref.dirs)
        if isinstance(elem, str):
            return f"nothing ({elem})"
        return render_elem(s, elem)

    def render(self) -> str:
        out = ["-j SET"]
        if self.add_set:
            out.append(f"--add-set {self.add_set.render()}")
            if self.exist:
                out.append("--exist")
            if self.timeout is not None:
                out.append(f"--timeout {self.timeout}")
        if self.del_set:
            out.append(f"--del-set {self.del_set.render()}")
        if self.map_set:
            out.append(f"--map-set {self.map_set.render()}")
            if self.map_mark:
                out.append("--map-mark")
            if self.map_prio:
                out.append("--map-prio")
            if self.map_queue:
                out.append("--map-queue")
        return " ".join(out)


@register_target("SET", {"--add-set": 2, "--del-set": 2, "--map-set": 2, "--exist": 0, "--timeout": 1,
                         "--map-mark": 0, "--map-prio": 0, "--map-queue": 0})
def parse_set_target(opts: Sequence[Opt], ctx: ParseCtx) -> SetTarget:
    """libxt_SET.c set_target_parse_v3 + final_check (iptables 1.8.9), with its messages."""
    kw: dict[str, object] = {}
    for o in opts:
        if o.invert:
            raise ctx.error(f"unexpected '!' before {o.name}", o.col)
        key = o.name[2:].replace("-", "_")
        if o.name in ("--add-set", "--del-set", "--map-set"):
            if key in kw:
                raise ctx.error(f"{o.name} can be specified only once", o.col)
            kw[key] = SetRef(*set_name_arg(o, ctx))
        elif o.name == "--timeout":
            try:
                value = int(o.args[0], 0)
            except ValueError:
                value = -1
            if not 0 <= value <= IPSET_NO_TIMEOUT - 1:
                raise ctx.error(f"Invalid value for option --timeout or out of range 0-{IPSET_NO_TIMEOUT - 1}",
                                o.col)
            kw["timeout"] = value
        else:
            kw[key] = True
    if not any(k in kw for k in ("add_set", "del_set", "map_set")):
        raise ctx.error("You must specify either `--add-set' or `--del-set' or `--map-set'")
    if "add_set" not in kw:
        if "exist" in kw:
            raise ctx.error("Flag `--exist' can be used with `--add-set' only")
        if "timeout" in kw:
            raise ctx.error("Option `--timeout' can be used with `--add-set' only")
    flags = [f for f in ("map_mark", "map_prio", "map_queue") if f in kw]
    if "map_set" not in kw and flags:
        raise ctx.error(f"Flag `--{flags[0].replace('_', '-')}' can be used with `--map-set' only")
    if "map_set" in kw and not flags:
        raise ctx.error("You must specify flags `--map-mark' or '--map-prio` or `--map-queue'")
    tgt = SetTarget(**kw)  # type: ignore[arg-type]
    if tgt.map_set and ctx.table != "mangle":
        # set_target_v3_checkentry() of Linux 6.18 (not in the out-of-tree ipset 7.21 module)
        raise ctx.error("--map-set only usable from mangle table (the kernel refuses the rule: "
                        "Invalid argument)")
    hooks = tgt.allowed_hooks
    if hooks is not None and ctx.chain in ("PREROUTING", "INPUT"):
        raise ctx.error("mapping of prio or/and queue is allowed only from OUTPUT/FORWARD/POSTROUTING "
                        "chains (the kernel refuses the rule: Invalid argument)")
    return tgt
