"""``-m recent`` (net/netfilter/xt_recent.c, recent_mt): a list of recently seen addresses.

``--set`` always matches (it adds the address); ``--rcheck``/``--update``/``--remove``
depend on the list's contents, which a snapshot does not hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.addr import int_to_ip, ip_to_int
from pktpath.model.xtables import Match, MatchResult, Uncertain

COMMANDS = ("--rcheck", "--set", "--update", "--remove")


@dataclass(frozen=True, slots=True)
class RecentMatch(Match):
    name: ClassVar[str] = "recent"
    command: str = "--set"
    invert: bool = False
    list_name: str = "DEFAULT"
    seconds: int = 0
    reap: bool = False
    hitcount: int = 0
    rttl: bool = False
    mask: int = 0xFFFFFFFF
    side: str = "--rsource"

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        if self.command == "--set":
            return not self.invert  # recent_mt(): --set adds the address and matches
        who = "source" if self.side == "--rsource" else "destination"
        return Uncertain(f"recent {self.command[2:]} '{self.list_name}': whether the {who} address is in the "
                         "list (filled by earlier packets, not in the snapshot)")

    def render(self) -> str:
        out = ["-m recent", ("! " if self.invert else "") + self.command]
        if self.seconds:
            out.append(f"--seconds {self.seconds}")
        if self.reap:
            out.append("--reap")
        if self.hitcount:
            out.append(f"--hitcount {self.hitcount}")
        if self.rttl:
            out.append("--rttl")
        out.append(f"--name {self.list_name} --mask {int_to_ip(self.mask)} {self.side}")
        return " ".join(out)


@register_match("recent", {"--set": 0, "--rcheck": 0, "--update": 0, "--remove": 0, "--seconds": 1,
                           "--reap": 0, "--hitcount": 1, "--rttl": 0, "--name": 1, "--rsource": 0,
                           "--rdest": 0, "--mask": 1})
def parse_recent(opts: Sequence[Opt], ctx: ParseCtx) -> RecentMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.invert and o.name not in COMMANDS:
            raise ctx.error(f"recent: option \"{o.name}\" cannot be inverted.")
        if o.name in COMMANDS:
            if "command" in kw:
                raise ctx.error("recent: only one of --set, --rcheck, --update or --remove may be given")
            kw["command"], kw["invert"] = o.name, o.invert
        elif o.name == "--seconds":
            kw["seconds"] = parse_int(o.args[0], ctx, o.name)
        elif o.name == "--hitcount":
            kw["hitcount"] = parse_int(o.args[0], ctx, o.name)
        elif o.name == "--name":
            kw["list_name"] = o.args[0]
        elif o.name == "--mask":
            try:
                kw["mask"] = ip_to_int(o.args[0])
            except ValueError:
                raise ctx.error(f"recent: --mask expects a dotted netmask, got {o.args[0]!r}") from None
        elif o.name in ("--rsource", "--rdest"):
            kw["side"] = o.name
        else:
            kw[o.name[2:]] = True
    if "command" not in kw:
        raise ctx.error("recent: you must specify one of --set, --rcheck, --update or --remove")
    if kw["command"] in ("--set", "--remove") and (kw.get("seconds") or kw.get("hitcount") or kw.get("reap")):
        raise ctx.error("recent: --seconds, --hitcount and --reap go only with --rcheck or --update")
    if kw.get("reap") and not kw.get("seconds"):
        raise ctx.error("recent: --reap needs --seconds")
    return RecentMatch(**kw)  # type: ignore[arg-type]
