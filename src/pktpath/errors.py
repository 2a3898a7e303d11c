"""The error tree.  Raised inside pktpath, translated once at the CLI boundary.

Every error that comes from input names where it was found (file, line, column
or JSON path) and what was expected there, so the CLI can print
``iptables-save.txt:12: ...`` and exit with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """Where a piece of input came from: file, 1-based line, raw text."""

    source: str
    line: int = 0
    text: str = ""
    col: int = 0

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


class PktpathError(Exception):
    """Root of every error pktpath raises on purpose."""

    exit_status = 2


class ParseError(PktpathError):
    """Input that is not what the tool that wrote it would write."""

    def __init__(self, source: str, line: int, msg: str, text: str = "", col: int = 0) -> None:
        self.source = source
        self.line = line
        self.msg = msg
        self.text = text
        self.col = col
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        if self.col:
            where += f":{self.col}"
        out = f"{where}: {self.msg}"
        if self.text:
            out += f"\n    {self.text}"
            if self.col:
                out += "\n    " + " " * (self.col - 1) + "^"
        return out


class UnsupportedFeature(ParseError):
    """A match, target or option that pktpath does not model (yet)."""


class SnapshotInconsistent(PktpathError):
    """The snapshot loads, but the kernel would refuse it (a jump to a missing chain, a loop...)."""

    def __init__(self, msg: str, loc: SourceLoc | None = None) -> None:
        self.loc = loc
        self.msg = msg
        super().__init__(f"{loc}: {msg}" if loc else msg)


class UsageError(PktpathError):
    """Bad command-line arguments (an unknown interface, a malformed address...)."""
