"""``-m owner`` (net/netfilter/xt_owner.c, owner_mt): the uid/gid of the local socket that
sent the packet; without a socket only the inverted options can match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

XT_OWNER_UID, XT_OWNER_GID, XT_OWNER_SOCKET = 1, 2, 4


def _range(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


@dataclass(frozen=True, slots=True)
class OwnerMatch(Match):
    name: ClassVar[str] = "owner"
    hooks: ClassVar[frozenset[Hook]] = frozenset({Hook.OUTPUT, Hook.POSTROUTING})
    uid: tuple[int, int] | None = None
    gid: tuple[int, int] | None = None
    socket_exists: bool = False
    suppl_groups: bool = False
    inv_uid: bool = False
    inv_gid: bool = False
    inv_socket: bool = False

    def _bits(self) -> tuple[int, int]:
        match = invert = 0
        for bit, given, inv in ((XT_OWNER_UID, self.uid is not None, self.inv_uid),
                                (XT_OWNER_GID, self.gid is not None, self.inv_gid),
                                (XT_OWNER_SOCKET, self.socket_exists, self.inv_socket)):
            if given:
                match |= bit
                invert |= bit if inv else 0
        return match, invert

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        match, invert = self._bits()
        sk = skb.sk
        if sk is None:
            # "(info->match ^ info->invert) == 0": only when every option given is inverted.
            return (match ^ invert) == 0
        if self.socket_exists and self.inv_socket:
            return False
        if self.uid is not None and (self.uid[0] <= sk.uid <= self.uid[1]) == self.inv_uid:
            return False
        if self.gid is not None:
            hit = self.gid[0] <= sk.gid <= self.gid[1]
            if not hit and self.suppl_groups:
                return Uncertain("--suppl-groups: whether a supplementary group of the socket's owner is in "
                                 f"{_range(self.gid)} (supplementary groups are not in the packet description)")
            if hit == self.inv_gid:
                return False
        return True

    def render(self) -> str:
        out = ["-m owner"]
        if self.socket_exists:
            out.append(("! " if self.inv_socket else "") + "--socket-exists")
        if self.uid is not None:
            out.append(("! " if self.inv_uid else "") + "--uid-owner " + _range(self.uid))
        if self.gid is not None:
            out.append(("! " if self.inv_gid else "") + "--gid-owner " + _range(self.gid))
        if self.suppl_groups:
            out.append("--suppl-groups")
        return " ".join(out)


def _id_range(o: Opt, ctx: ParseCtx) -> tuple[int, int]:
    text = o.args[0]
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise ctx.error(f"{o.name}: expected a number or a range N-M, got {text!r} (pktpath does not resolve "
                        "user or group names: iptables-save prints numbers)")
    first = parse_int(lo, ctx, o.name, 0, 0xFFFFFFFE)
    last = parse_int(hi, ctx, o.name, 0, 0xFFFFFFFE) if sep else first
    if last < first:
        raise ctx.error(f"{o.name}: range {text!r} is reversed")
    return first, last


@register_match("owner", {"--uid-owner": 1, "--gid-owner": 1, "--socket-exists": 0, "--suppl-groups": 0})
def parse_owner(opts: Sequence[Opt], ctx: ParseCtx) -> OwnerMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.name == "--uid-owner":
            kw["uid"], kw["inv_uid"] = _id_range(o, ctx), o.invert
        elif o.name == "--gid-owner":
            kw["gid"], kw["inv_gid"] = _id_range(o, ctx), o.invert
        elif o.name == "--socket-exists":
            kw["socket_exists"], kw["inv_socket"] = True, o.invert
        else:
            if o.invert:
                raise ctx.error("owner: option \"--suppl-groups\" cannot be inverted")
            kw["suppl_groups"] = True
    if not kw:
        raise ctx.error("owner: at least one of --uid-owner, --gid-owner or --socket-exists is required")
    if kw.get("suppl_groups") and "gid" not in kw:
        raise ctx.error("owner: --suppl-groups needs --gid-owner")
    return OwnerMatch(**kw)  # type: ignore[arg-type]
