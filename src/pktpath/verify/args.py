"""``pktpath trace`` packet arguments: one list of words, read by pktpath and the sandbox alike."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from pktpath.errors import UsageError

# (option, takes a value) in the order ``packet_args`` writes them.
OPTIONS: tuple[tuple[str, bool], ...] = (
    ("--iif", True), ("--local", False), ("--src", True), ("--dst", True), ("--proto", True),
    ("--sport", True), ("--dport", True), ("--icmp-type", True), ("--tcp-flags", True), ("--mark", True),
    ("--uid", True), ("--ttl", True), ("--length", True), ("--mac-src", True),
)


@dataclass(frozen=True)
class PacketArgs:
    iif: str | None = None
    local: bool = False
    src: str | None = None
    dst: str | None = None
    proto: str | None = None
    sport: str | None = None
    dport: str | None = None
    icmp_type: str | None = None
    tcp_flags: str | None = None
    mark: str | None = None
    uid: str | None = None
    ttl: str | None = None
    length: str | None = None
    mac_src: str | None = None

    def words(self) -> list[str]:
        out: list[str] = []
        for opt, valued in OPTIONS:
            value = getattr(self, opt[2:].replace("-", "_"))
            if valued and value is not None:
                out += [opt, str(value)]
            elif not valued and value:
                out.append(opt)
        return out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"packet arguments: {message}")


def parse_words(words: Sequence[str]) -> PacketArgs:
    """The inverse of ``PacketArgs.words()``."""
    p = _Parser(add_help=False)
    for opt, valued in OPTIONS:
        if valued:
            p.add_argument(opt)
        else:
            p.add_argument(opt, action="store_true")
    ns = p.parse_args(list(words))
    return PacketArgs(**{opt[2:].replace("-", "_"): getattr(ns, opt[2:].replace("-", "_")) for opt, _ in OPTIONS})
