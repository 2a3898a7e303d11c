"""The extension registry: one entry per iptables match or target, keyed by name
(as the kernel's ``xt_register_match`` / ``xt_register_target`` and iptables' libxt_*).

Each extension declares the options it takes (``--name`` -> number of arguments) so the
rule parser can hand each option to the extension that owns it, the way iptables merges
the option tables of the loaded extensions, then builds its frozen model object from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pktpath.errors import ParseError, UnsupportedFeature
from pktpath.model.xtables import Match, Target


@dataclass(frozen=True, slots=True)
class Opt:
    """One option given to an extension: ``[!] --name ARG...``."""

    name: str
    args: tuple[str, ...]
    invert: bool = False
    col: int = 0


@dataclass(slots=True)
class ParseCtx:
    """What an extension's parser may know of the rule around it."""

    source: str
    line: int
    text: str
    table: str = "filter"
    chain: str = ""
    proto: int = 0  # the rule's -p (0: any)
    inv_proto: bool = False
    warnings: list[str] = field(default_factory=list)

    def error(self, msg: str, col: int = 0) -> ParseError:
        return ParseError(self.source, self.line, msg, self.text, col)

    def unsupported(self, msg: str, col: int = 0) -> UnsupportedFeature:
        return UnsupportedFeature(self.source, self.line, msg, self.text, col)


MatchParser = Callable[[Sequence[Opt], ParseCtx], Match]
TargetParser = Callable[[Sequence[Opt], ParseCtx], Target]


@dataclass(frozen=True, slots=True)
class ExtSpec:
    name: str
    options: Mapping[str, int]  # --option -> argument count
    parse: Callable[[Sequence[Opt], ParseCtx], object]
    aliases: tuple[str, ...] = ()

    def resolve(self, option: str) -> str | None:
        """The option's full name: exact, else a unique prefix (getopt_long abbreviations)."""
        if option in self.options:
            return option
        hits = [o for o in self.options if o.startswith(option)]
        return hits[0] if len(hits) == 1 else None


MATCHES: dict[str, ExtSpec] = {}
TARGETS: dict[str, ExtSpec] = {}

M = TypeVar("M", bound=Match)
T = TypeVar("T", bound=Target)


def register_match(
    name: str, options: Mapping[str, int], aliases: tuple[str, ...] = ()
) -> Callable[[MatchParser], MatchParser]:
    def deco(fn: MatchParser) -> MatchParser:
        spec = ExtSpec(name, dict(options), fn, aliases)
        for n in (name, *aliases):
            MATCHES[n] = spec
        return fn

    return deco


def register_target(
    name: str, options: Mapping[str, int], aliases: tuple[str, ...] = ()
) -> Callable[[TargetParser], TargetParser]:
    def deco(fn: TargetParser) -> TargetParser:
        spec = ExtSpec(name, dict(options), fn, aliases)
        for n in (name, *aliases):
            TARGETS[n] = spec
        return fn

    return deco


# ---------------------------------------------------------------- option helpers
def single(opts: Sequence[Opt], name: str) -> Opt | None:
    """The option given once, or None; the last one wins as with getopt."""
    found = [o for o in opts if o.name == name]
    return found[-1] if found else None


def parse_int(text: str, ctx: ParseCtx, what: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ctx.error(f"{what}: expected a number, got {text!r}") from None
    if not lo <= value <= hi:
        raise ctx.error(f"{what}: {value} is out of range {lo}..{hi}")
    return value


def parse_value_mask(text: str, ctx: ParseCtx, what: str, default_mask: int = 0xFFFFFFFF) -> tuple[int, int]:
    """``VALUE[/MASK]`` as the mark-like options take it."""
    value, sep, mask = text.partition("/")
    v = parse_int(value, ctx, what)
    m = parse_int(mask, ctx, what) if sep else default_mask
    return v, m


def hexmask(value: int, mask: int, full: int = 0xFFFFFFFF) -> str:
    return f"{value:#x}" if mask == full else f"{value:#x}/{mask:#x}"
