"""``-m policy`` (net/netfilter/xt_policy.c, policy_mt): the IPsec policy that decapsulated
(``--dir in``) or will encapsulate (``--dir out``) the packet.  pktpath has no IPsec (xfrm)
state, so ``--pol none`` always matches and ``--pol ipsec`` never does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Hook, Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.addr import Prefix, int_to_ip
from pktpath.model.xtables import Match, MatchResult

IN_HOOKS = frozenset({Hook.PREROUTING, Hook.INPUT, Hook.FORWARD})
OUT_HOOKS = frozenset({Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING})
PROTOS = {"esp": 50, "ah": 51, "ipcomp": 108}
ELEMENT_OPTS = ("--reqid", "--spi", "--proto", "--mode", "--tunnel-dst", "--tunnel-src")  # save order


@dataclass(frozen=True, slots=True)
class PolicyElem:
    items: tuple[tuple[str, str, bool], ...]  # (option, rendered value, invert)


@dataclass(frozen=True, slots=True)
class PolicyMatch(Match):
    name: ClassVar[str] = "policy"
    direction: str  # in | out
    pol: str  # none | ipsec
    strict: bool = False
    elements: tuple[PolicyElem, ...] = ()

    def valid_hooks(self) -> frozenset[Hook]:
        return IN_HOOKS if self.direction == "in" else OUT_HOOKS

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        # match_policy_in/out() return -1 without a sec_path / dst->xfrm: "none" matches.
        return self.pol == "none"

    def render(self) -> str:
        out = [f"-m policy --dir {self.direction} --pol {self.pol}"]
        if self.strict:
            out.append("--strict")
        for i, elem in enumerate(self.elements):
            if i:
                out.append("--next")
            for opt in ELEMENT_OPTS:
                for name, value, inv in elem.items:
                    if name == opt:
                        out.append(("! " if inv else "") + f"{name} {value}")
        return " ".join(out)


def _tunnel_addr(text: str, ctx: ParseCtx, opt: str) -> str:
    addr, sep, mask = text.partition("/")
    try:
        prefix = Prefix.parse(text)
        base = int_to_ip(Prefix.parse(addr).addr)
    except ValueError:
        raise ctx.error(f"policy: {opt}: bad address {text!r}") from None
    return base if not sep or prefix.plen == 32 else f"{base}/{prefix.plen}"


@register_match("policy", {"--dir": 1, "--pol": 1, "--strict": 0, "--reqid": 1, "--spi": 1, "--proto": 1,
                           "--mode": 1, "--tunnel-src": 1, "--tunnel-dst": 1, "--next": 0})
def parse_policy(opts: Sequence[Opt], ctx: ParseCtx) -> PolicyMatch:
    direction = pol = None
    strict = False
    elements: list[PolicyElem] = []
    current: list[tuple[str, str, bool]] = []
    for o in opts:
        a = o.args[0] if o.args else ""
        if o.invert and o.name in ("--dir", "--pol", "--strict", "--next"):
            raise ctx.error(f"policy: option \"{o.name}\" cannot be inverted")
        if o.name == "--dir":
            if a not in ("in", "out"):
                raise ctx.error(f"policy: --dir expects in or out, got {a!r}")
            direction = a
        elif o.name == "--pol":
            if a not in ("none", "ipsec"):
                raise ctx.error(f"policy: --pol expects none or ipsec, got {a!r}")
            pol = a
        elif o.name == "--strict":
            strict = True
        elif o.name == "--next":
            if not current:
                raise ctx.error("policy: --next with an empty element before it")
            elements.append(PolicyElem(tuple(current)))
            current = []
        elif o.name == "--reqid":
            current.append((o.name, str(parse_int(a, ctx, o.name)), o.invert))
        elif o.name == "--spi":
            current.append((o.name, f"{parse_int(a, ctx, o.name):#x}", o.invert))
        elif o.name == "--proto":
            proto = PROTOS.get(a.lower(), int(a) if a.isdigit() else None)
            name = next((n for n, v in PROTOS.items() if v == proto), None)
            if name is None:
                raise ctx.error(f"policy: --proto expects esp, ah or ipcomp, got {a!r}")
            current.append((o.name, name, o.invert))
        elif o.name == "--mode":
            if a not in ("transport", "tunnel"):
                raise ctx.error(f"policy: --mode expects transport or tunnel, got {a!r}")
            current.append((o.name, a, o.invert))
        else:
            current.append((o.name, _tunnel_addr(a, ctx, o.name), o.invert))
    if current:
        elements.append(PolicyElem(tuple(current)))
    if direction is None:
        raise ctx.error("policy: option \"--dir\" must be specified")
    if pol is None:
        raise ctx.error("policy: option \"--pol\" must be specified")
    if pol == "none" and elements:
        raise ctx.error("policy: policy none can't have element options")
    if strict and not elements:
        raise ctx.error("policy: strict mode needs at least one element")
    return PolicyMatch(direction, pol, strict, tuple(elements))
