"""Read new kernel log records from /dev/kmsg and parse iptables TRACE lines.

A TRACE line is ``TRACE: table:chain:type:num IN=.. OUT=.. [MAC=..] SRC=.. DST=.. LEN=..
... PROTO=.. [SPT=.. DPT=..] ... [MARK=0x..]`` (nf_log_syslog's IPv4 dump).  Only the
outer header counts: an ICMP error quotes the offending packet in ``[...]`` with its own
SRC/DST/ID, so parsing stops at the first ``[``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

KMSG = "/dev/kmsg"


class KmsgReader:
    """Non-blocking reader of kernel log records written after it was opened."""

    def __init__(self) -> None:
        self.fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.lseek(self.fd, 0, os.SEEK_END)  # skip everything logged before us

    def fileno(self) -> int:
        return self.fd

    def read_new(self) -> list[str]:
        """Messages (first line of each record) available now."""
        out: list[str] = []
        while True:
            try:
                rec = os.read(self.fd, 16384)
            except BlockingIOError:
                return out
            except BrokenPipeError:
                continue  # records were overwritten under us; the next read resumes
            if not rec:
                return out
            text = rec.decode("utf-8", "replace")
            _, _, msg = text.partition(";")
            out.append(msg.split("\n", 1)[0])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass(frozen=True)
class TraceLine:
    """One parsed TRACE record."""

    table: str
    chain: str
    kind: str
    num: int
    fields: dict[str, str]
    text: str

    @property
    def id(self) -> str:
        return f"{self.table}:{self.chain}:{self.kind}:{self.num}"

    def int_field(self, key: str) -> int | None:
        v = self.fields.get(key)
        if v is None:
            return None
        try:
            return int(v, 0) if v.startswith("0x") else int(v)
        except ValueError:
            return None


def packet_fields(text: str) -> dict[str, str]:
    """KEY=value pairs of an nf_log packet dump, outer header only."""
    fields: dict[str, str] = {}
    for tok in text.split(" "):
        if tok.startswith("["):
            break  # quoted packet inside an ICMP error
        key, eq, value = tok.partition("=")
        if eq and key not in fields:  # first occurrence: IP LEN/ID, not UDP LEN / ICMP ID
            fields[key] = value
    # MARK= is printed after the quoted packet (nf_log_dump_packet_common): the last token.
    tail = text.rstrip().rsplit(" ", 1)[-1]
    if tail.startswith("MARK="):
        fields["MARK"] = tail[5:]
    return fields


def parse_trace_line(msg: str) -> TraceLine | None:
    """Parse one log message; None if it is not a TRACE line."""
    if not msg.startswith("TRACE: "):
        return None
    head, _, rest = msg[len("TRACE: "):].partition(" ")
    parts = head.split(":")
    if len(parts) < 4 or not parts[-1].isdigit():
        return None
    return TraceLine(parts[0], ":".join(parts[1:-2]), parts[-2], int(parts[-1]), packet_fields(rest), msg)


def trace_entry(line: TraceLine, rule: str | None) -> dict[str, object]:
    """The entry shape of expected.json's ``trace`` list."""
    f = line.fields
    proto = f.get("PROTO", "").lower() or None
    ported = proto in ("tcp", "udp", "udplite", "sctp", "dccp")
    return {
        "id": line.id,
        "iif": f.get("IN") or None,
        "oif": f.get("OUT") or None,
        "src": f.get("SRC"),
        "dst": f.get("DST"),
        "proto": proto,
        "sport": line.int_field("SPT") if ported else None,
        "dport": line.int_field("DPT") if ported else None,
        "mark": int(f["MARK"], 16) if "MARK" in f else 0,  # nf_log prints MARK=0x.. only when set
        "rule": rule,
        "ttl": line.int_field("TTL"),
        "len": line.int_field("LEN"),
        "log": line.text,
    }
