"""What a walk records per matched rule, cheaply, and how it becomes trace entries, events
and their JSON text.

A walk can match dozens of rules, and a batch run walks thousands of packets: building a
``TraceEntry`` with its kernel log line and an ``Event`` for every matched row would cost
more than the rule walk itself.  So a walk records only two shared objects per row:

* ``RowInfo``: what a row shows in a trace (label, rule text, origin), worked out once per
  row of an engine, with the fixed pieces of its JSON;
* ``PacketState``: the packet fields and hook devices the TRACE line prints, one object
  per distinct state (a run of rows matched without a rewrite shares it).  The log line's
  tail and the JSON pieces are formatted on first use and then reused.

The match record ``(RowInfo, PacketState, ctinfo)`` is both the trace entry and the rule
event (whose mark is the state's); other events are ``(kind, message, data)`` tuples.

``TraceEntry`` / ``Event`` objects are built from these only when someone reads a
``PathOutcome``'s ``trace`` or ``events``; the batch JSON writer
(``render_json.trace_json_text``) goes straight from the records to text.  Both give
exactly what the eager construction gave."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from json import encoder as _json_encoder
from json.encoder import encode_basestring_ascii
from typing import Any

from pktpath.engine.skb import CtInfo, proto_name
from pktpath.model.addr import int_to_ip
from pktpath.trace.events import Event, TraceEntry
from pktpath.trace.kernel_log import SPT_PROTOS, trace_tail_split

# json.dumps(obj, separators=(",", ":")) is JSONEncoder(separators=(",", ":")).encode(obj).
ENCODER = json.JSONEncoder(separators=(",", ":"))


def _c_encoder() -> Callable[[object, int], Any] | None:
    """The C encoder ENCODER.encode() makes on every call (json.encoder.JSONEncoder.iterencode),
    made once: its markers dict is empty again after every successful call."""
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:
        return None
    e = ENCODER
    return make({}, e.default, encode_basestring_ascii, e.indent, e.key_separator,  # type: ignore[no-any-return]
                e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan)


_C_ENCODE = _c_encoder()


def encode(obj: object) -> str:
    """``json.dumps(obj, separators=(",", ":"))``."""
    global _C_ENCODE
    if _C_ENCODE is None or isinstance(obj, str):
        return ENCODER.encode(obj)
    try:
        return "".join(_C_ENCODE(obj, 0))
    except Exception:
        _C_ENCODE = _c_encoder()  # it may hold markers of the failed (or an interrupted) call
        return ENCODER.encode(obj)  # raises the very error json.dumps raises


def jv(value: object) -> str:
    """The JSON text of one value, exactly as ``json.dumps`` (compact separators) writes it."""
    t = type(value)
    if t is str:
        return encode_basestring_ascii(value)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if t is int:
        return int.__repr__(value)
    if t is bool:
        return "true" if value else "false"
    if t is float and math.isfinite(value):  # type: ignore[arg-type]
        return float.__repr__(value)
    return encode(value)


def jesc(text: str) -> str:
    """``text`` escaped as inside a JSON string, without the quotes (escaping is per character,
    so the escapes of two strings joined are the escape of the joined string)."""
    return encode_basestring_ascii(text)[1:-1]


class RowInfo:
    """One rule row as a trace shows it: the TRACE id, the rule's text and origin, the rule
    event's message, and the fixed JSON pieces of its trace entry and rule event."""

    __slots__ = ("row", "label", "rule", "origin", "message", "tr_head", "tr_mid", "label_esc", "ev_head")

    def __init__(self, row: object, label: str, rule: str | None, origin: str | None, message: str) -> None:
        self.row = row  # the row described
        self.label = label
        self.rule = rule
        self.origin = origin
        self.message = message
        self.tr_head = '{"id":' + jv(label) + ","
        self.tr_mid = '"rule":' + jv(rule) + ',"origin":' + jv(origin) + ","
        self.label_esc = jesc(label)
        self.ev_head = ('{"kind":"rule","message":' + jv(message) + ',"id":' + jv(label) + ',"origin":'
                        + jv(origin) + ',"mark":')

    def entry(self, st: PacketState) -> TraceEntry:
        return TraceEntry(
            id=self.label, iif=st.in_dev, oif=st.out_dev, src=ip_text(st.src), dst=ip_text(st.dst),
            proto=proto_name(st.proto), sport=st.sport, dport=st.dport, mark=st.mark, rule=self.rule,
            origin=self.origin, ttl=st.ttl, len=st.length, log="TRACE: " + self.label + st.tail())

    def entry_json(self, st: PacketState) -> str:
        a, b, c = st.json or st.json_pieces()
        return f"{self.tr_head}{a}{self.tr_mid}{b}{self.label_esc}{c}"

    def event(self, mark: int, ctinfo: CtInfo | None) -> Event:
        return Event("rule", self.message, {"id": self.label, "origin": self.origin, "mark": mark,
                                            "ctstate": ctinfo.name if ctinfo is not None else None})

    def event_json(self, mark: int, ctinfo: CtInfo | None) -> str:
        return self.ev_head + (_EVENT_TAILS.get((mark, ctinfo)) or rule_event_tail(mark, ctinfo))


_EVENT_TAILS: dict[tuple[int, CtInfo | None], str] = {}


def rule_event_tail(mark: int, ctinfo: CtInfo | None) -> str:
    """The end of a rule event's JSON: ``MARK,"ctstate":STATE}``."""
    tail = jv(mark) + ',"ctstate":' + jv(ctinfo.name if ctinfo is not None else None) + "}"
    if len(_EVENT_TAILS) > 1024:
        _EVENT_TAILS.clear()
    _EVENT_TAILS[(mark, ctinfo)] = tail
    return tail


# The packet fields a TRACE line shows, in PacketState.key order (after in_dev and out_dev).
STATE_FIELDS = ("src", "dst", "proto", "sport", "dport", "mark", "ttl", "length", "tos", "ident", "tcp_flags",
                "icmp_type", "icmp_code", "icmp_id", "mac_src")


class PacketState:
    """The packet and hook devices as one TRACE line shows them (``key``: in_dev, out_dev, then
    the skb's ``STATE_FIELDS``; ``in_mac`` the input device's address); the log tail and JSON
    pieces are formatted on first use, from a template shared by the states that differ only
    in the source port (``_template``).  Keys compare by value, as the skb's fields do: its
    numbers are ints (never bools), so equal keys print alike."""

    __slots__ = ("key", "in_mac", "in_dev", "out_dev", "src", "dst", "proto", "sport", "dport", "mark", "ttl",
                 "length", "_tail", "json", "_tpl")

    def __init__(self, key: tuple[Any, ...], in_mac: str | None) -> None:
        self.key = key
        self.in_mac = in_mac
        (self.in_dev, self.out_dev, self.src, self.dst, self.proto, self.sport, self.dport, self.mark,
         self.ttl, self.length) = key[:10]
        self._tail: str | None = None
        self.json: tuple[str, str, str] | None = None  # json_pieces(), once made
        self._tpl: _Template | None = None

    def _template(self) -> _Template:
        """(before, after) of ``trace_tail_split``, and the JSON pieces around the source port:
        ``"iif"`` to ``"sport":``, ``,"dport"`` to ``"mark"``, ``"ttl"`` to the log's opening,
        and the escaped ``before`` and ``after`` (this one closing the entry)."""
        tpl = self._tpl
        if tpl is None:
            key = self.key
            tkey = (key[:5], key[6:], self.in_mac)  # all but the source port
            tpl = _TEMPLATES.get(tkey)
            if tpl is None:
                (in_dev, out_dev, src, dst, proto, _sport, dport, mark, ttl, length, tos, ident, tcp_flags,
                 icmp_type, icmp_code, icmp_id, mac_src) = key
                before, after = trace_tail_split(in_dev, out_dev, self.in_mac, src, dst, length, tos, ttl, ident,
                                                 proto, dport, tcp_flags, icmp_type, icmp_code, icmp_id, mark,
                                                 mac_src)
                tpl = (before, after,
                       f'"iif":{jv(in_dev)},"oif":{jv(out_dev)},"src":{jv(ip_text(src))},"dst":{jv(ip_text(dst))},'
                       f'"proto":{jv(proto_name(proto))},"sport":',
                       f',"dport":{jv(dport)},"mark":{jv(mark)},',
                       f'"ttl":{jv(ttl)},"len":{jv(length)},"log":"TRACE: ',
                       jesc(before), jesc(after) + '"}')
                if len(_TEMPLATES) >= 4096:
                    _TEMPLATES.clear()
                _TEMPLATES[tkey] = tpl
            self._tpl = tpl
        return tpl

    def tail(self) -> str:
        """The log line after its label (``trace_tail``)."""
        tail = self._tail
        if tail is None:
            tpl = self._template()
            tail = self._tail = f"{tpl[0]}{self.sport}{tpl[1]}" if self.proto in SPT_PROTOS else tpl[0]
        return tail

    def json_pieces(self) -> tuple[str, str, str]:
        """The state's parts of a trace entry's JSON: ``"iif"`` to ``"mark"``, ``"ttl"`` to the
        log's opening, and the log's tail with the closing of the object."""
        pieces = self.json
        if pieces is None:
            _before, _after, a1, a2, b, c1, c2 = self._template()
            sport = self.sport
            spt = (str(sport) if type(sport) is int else jesc(f"{sport}")) if self.proto in SPT_PROTOS else ""
            pieces = self.json = (a1 + jv(sport) + a2, b, c1 + spt + c2)
        return pieces


_Template = tuple[str, str, str, str, str, str, str]
_TEMPLATES: dict[tuple[Any, ...], _Template] = {}
_IP_TEXT: dict[int, str] = {}


def ip_text(addr: int) -> str:
    """``int_to_ip(addr)``, remembered (a walk prints the same few addresses many times)."""
    text = _IP_TEXT.get(addr)
    if text is None:
        if len(_IP_TEXT) >= 4096:
            _IP_TEXT.clear()
        text = _IP_TEXT[addr] = int_to_ip(addr)
    return text


# A matched row: (RowInfo, PacketState, ctinfo), in the walk's trace and, as a rule event, in its events.
TraceRecord = tuple[RowInfo, PacketState, "CtInfo | None"]
# A rule event (a TraceRecord), or any other event: (kind, message, data), or (kind, message,
# data, JSON text) when many walks share it (fixed_event).
EventRecord = tuple[Any, ...]


def fixed_event(kind: str, message: str, data: dict[str, Any]) -> EventRecord:
    """The record of an event many walks report alike: its JSON is written once.  ``data``
    must not change after this (make_event gives each Event its own copy)."""
    return (kind, message, data, event_json((kind, message, data)))


def make_event(rec: EventRecord) -> Event:
    head = rec[0]
    if type(head) is str:
        if len(rec) == 4:  # shared by walks: each Event gets its own data, as if made alone
            return Event(head, rec[1], {k: list(v) if type(v) is list else v for k, v in rec[2].items()})
        return Event(head, rec[1], rec[2])
    info: RowInfo = head
    return info.event(rec[1].mark, rec[2])


def event_json(rec: EventRecord) -> str:
    """``encode(make_event(rec).to_json())``."""
    head = rec[0]
    if type(head) is str:
        if len(rec) == 4:
            return rec[3]  # type: ignore[no-any-return]
        data: dict[str, Any] = rec[2]
        if "kind" in data or "message" in data:
            return encode({"kind": head, "message": rec[1], **data})
        text = '{"kind":' + encode_basestring_ascii(head) + ',"message":' + jv(rec[1])
        for key, value in data.items():
            text += "," + jv(key) + ":" + jv(value)
        return text + "}"
    info: RowInfo = head
    return info.event_json(rec[1].mark, rec[2])


def trace_text(records: Sequence[TraceRecord]) -> str:
    """The JSON of the trace entries, comma-separated: ``",".join(info.entry_json(st) ...)``."""
    out = []
    for info, st, _ctinfo in records:
        a, b, c = st.json or st.json_pieces()
        out.append(f"{info.tr_head}{a}{info.tr_mid}{b}{info.label_esc}{c}")
    return ",".join(out)


def events_text(records: Sequence[EventRecord]) -> str:
    """The JSON of the events, comma-separated: ``",".join(event_json(rec) ...)``."""
    out = []
    tails = _EVENT_TAILS
    for rec in records:
        head = rec[0]
        if type(head) is str:
            out.append(rec[3] if len(rec) == 4 else event_json(rec))
        else:
            mark = rec[1].mark
            ctinfo = rec[2]
            out.append(head.ev_head + (tails.get((mark, ctinfo)) or rule_event_tail(mark, ctinfo)))
    return ",".join(out)
