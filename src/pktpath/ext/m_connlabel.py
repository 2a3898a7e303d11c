"""``-m connlabel`` (net/netfilter/xt_connlabel.c, connlabel_mt): a bit of the connection's
label set; ``--set`` sets it and matches.  A connection this packet creates has no label
yet; the labels of a loaded connection are not in the snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import CtInfo, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

LABELS_KEY = "connlabel"  # Conn.extra key: the label bits set during this walk, comma-separated


@dataclass(frozen=True, slots=True)
class ConnlabelMatch(Match):
    name: ClassVar[str] = "connlabel"
    needs_conntrack: ClassVar[bool] = True
    label: str  # a number, or a name from /etc/xtables/connlabel.conf
    set_label: bool = False
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        ct = skb.ct
        if ct is None:
            return self.invert
        labels = set(filter(None, ct.extra.get(LABELS_KEY, "").split(",")))
        if self.label in labels:
            return not self.invert
        if self.set_label:
            ct.extra[LABELS_KEY] = ",".join(sorted(labels | {self.label}))
            return not self.invert  # set the bit and match
        if ct.origin == "new" and skb.ctinfo == CtInfo.NEW:
            return self.invert  # a new connection starts with no label
        return Uncertain(f"connlabel {self.label!r}: the connection's labels are not in the snapshot")

    def render(self) -> str:
        return (f'-m connlabel {"! " if self.invert else ""}--label "{self.label}"'
                + (" --set" if self.set_label else ""))


@register_match("connlabel", {"--label": 1, "--set": 0})
def parse_connlabel(opts: Sequence[Opt], ctx: ParseCtx) -> ConnlabelMatch:
    label = None
    invert = set_label = False
    for o in opts:
        if o.name == "--label":
            label, invert = o.args[0], o.invert
        else:
            set_label = True
    if label is None:
        raise ctx.error("connlabel: option \"--label\" must be specified")
    if label.isdigit() and int(label) > 127:
        raise ctx.error("connlabel: label number out of range (0-127)")
    return ConnlabelMatch(label, set_label, invert)
