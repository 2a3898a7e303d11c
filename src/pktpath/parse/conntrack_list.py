"""``conntrack -L`` (and /proc/net/nf_conntrack) text -> ``CtEntry`` list.  Sans-IO."""

from __future__ import annotations

from pktpath.engine.skb import PROTO_NAMES
from pktpath.errors import ParseError, SourceLoc
from pktpath.model.addr import ip_to_int
from pktpath.model.conntrack import CtEntry, CtTuple

TCP_STATES = {"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
              "CLOSE", "SYN_SENT2"}


def parse(text: str, source: str = "conntrack.txt") -> tuple[CtEntry, ...]:
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "conntrack v")):
            continue
        words = line.split()
        if words[0] in ("ipv4", "ipv6"):  # /proc/net/nf_conntrack: family name and number first
            if words[0] == "ipv6":
                continue
            words = words[2:]
        try:
            out.append(_entry(words, SourceLoc(source, lineno, line)))
        except (ValueError, IndexError, KeyError) as e:
            raise ParseError(source, lineno, f"expected a 'conntrack -L' line (PROTO NUM TIMEOUT [STATE] src=... "
                             f"dst=... ...): {e}", line) from None
    return tuple(out)


def _entry(words: list[str], loc: SourceLoc) -> CtEntry:
    name = words[0].lower()
    proto = PROTO_NAMES[name] if name in PROTO_NAMES else int(words[1])
    rest = words[3:]
    state = None
    if rest and rest[0] in TCP_STATES:
        state = rest.pop(0)
    tuples: list[dict[str, str]] = []
    flags: set[str] = set()
    mark = zone = 0
    for w in rest:
        if w.startswith("[") and w.endswith("]"):
            flags.add(w[1:-1])
            continue
        key, sep, value = w.partition("=")
        if not sep:
            continue
        if key == "src":
            tuples.append({})
        if key in ("src", "dst", "sport", "dport", "type", "code", "id") and tuples:
            tuples[-1][key] = value
        elif key == "mark":
            mark = int(value, 0)
        elif key == "zone":
            zone = int(value, 0)
    if len(tuples) < 2:
        raise ValueError("two tuples (src=... dst=...) expected")
    return CtEntry(proto, _tuple(tuples[0], proto), _tuple(tuples[1], proto), state,
                   frozenset(f for f in flags if f in ("UNREPLIED", "ASSURED")), mark, zone, loc)


def _tuple(t: dict[str, str], proto: int) -> CtTuple:
    src, dst = ip_to_int(t["src"]), ip_to_int(t["dst"])
    if proto == 1:
        return CtTuple(src, dst, int(t.get("id", "0")), (int(t.get("type", "0")) << 8) | int(t.get("code", "0")))
    return CtTuple(src, dst, int(t.get("sport", "0")), int(t.get("dport", "0")))
