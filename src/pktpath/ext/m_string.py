"""``-m string`` (net/netfilter/xt_string.c, string_mt): a byte pattern searched in the
packet from ``--from`` to ``--to``.  The payload is not in a packet description, so the
match is undecidable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pktpath.engine.skb import Skb, XtParams
from pktpath.ext.registry import Opt, ParseCtx, parse_int, register_match
from pktpath.model.xtables import Match, MatchResult, Uncertain

MAX_PATTERN = 128  # XT_STRING_MAX_PATTERN_SIZE


def _printable(data: bytes) -> bool:
    return all(0x20 <= b <= 0x7E for b in data)


def parse_hex_string(text: str, ctx: ParseCtx) -> bytes:
    """libxt_string parse_hex_string(): literal text with ``|hex bytes|`` runs and ``\\`` escapes."""
    out = bytearray()
    i, hexmode = 0, False
    while i < len(text):
        ch = text[i]
        if ch == "|":
            hexmode = not hexmode
            i += 1
            continue
        if hexmode:
            if ch == " ":
                i += 1
                continue
            pair = text[i:i + 2]
            try:
                out.append(int(pair, 16))
            except ValueError:
                raise ctx.error(f"string: invalid hex byte {pair!r} in --hex-string") from None
            i += 2
            continue
        if ch == "\\" and i + 1 < len(text):
            i += 1
            ch = text[i]
        out += ch.encode("latin-1")
        i += 1
    if hexmode:
        raise ctx.error("string: --hex-string has an unterminated |...| run")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class StringMatch(Match):
    name: ClassVar[str] = "string"
    pattern: bytes
    algo: str
    from_offset: int = 0
    to_offset: int = 65535
    icase: bool = False
    invert: bool = False

    def matches(self, skb: Skb, par: XtParams) -> MatchResult:
        return Uncertain("string: whether the pattern occurs in the packet's bytes (the payload is not in the "
                         "packet description)")

    def render(self) -> str:
        inv = "! " if self.invert else ""
        if _printable(self.pattern):
            text = self.pattern.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"')
            out = [f'-m string {inv}--string "{text}"']
        else:
            out = [f'-m string {inv}--hex-string "|{self.pattern.hex()}|"']
        out.append(f"--algo {self.algo}")
        if self.from_offset:
            out.append(f"--from {self.from_offset}")
        if self.to_offset != 65535:
            out.append(f"--to {self.to_offset}")
        if self.icase:
            out.append("--icase")
        return " ".join(out)


@register_match("string", {"--from": 1, "--to": 1, "--algo": 1, "--string": 1, "--hex-string": 1, "--icase": 0})
def parse_string(opts: Sequence[Opt], ctx: ParseCtx) -> StringMatch:
    kw: dict[str, object] = {}
    for o in opts:
        if o.invert and o.name not in ("--string", "--hex-string"):
            raise ctx.error(f"string: option \"{o.name}\" cannot be inverted.")
        if o.name == "--string":
            kw["pattern"], kw["invert"] = o.args[0].encode("latin-1", "replace"), o.invert
        elif o.name == "--hex-string":
            kw["pattern"], kw["invert"] = parse_hex_string(o.args[0], ctx), o.invert
        elif o.name == "--algo":
            if o.args[0] not in ("bm", "kmp"):
                raise ctx.error(f"string: unknown --algo {o.args[0]!r}, expected bm or kmp")
            kw["algo"] = o.args[0]
        elif o.name == "--from":
            kw["from_offset"] = parse_int(o.args[0], ctx, o.name, 0, 65535)
        elif o.name == "--to":
            kw["to_offset"] = parse_int(o.args[0], ctx, o.name, 0, 65535)
        else:
            kw["icase"] = True
    if "pattern" not in kw:
        raise ctx.error("string: STRING (--string or --hex-string) must be specified")
    if "algo" not in kw:
        raise ctx.error("string: option \"--algo\" must be specified")
    pattern = kw["pattern"]
    assert isinstance(pattern, bytes)
    if not pattern or len(pattern) > MAX_PATTERN:
        raise ctx.error(f"string: the pattern must be 1 to {MAX_PATTERN} bytes long")
    return StringMatch(**kw)  # type: ignore[arg-type]
