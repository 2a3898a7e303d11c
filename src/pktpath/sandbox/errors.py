"""Errors of the kernel sandbox."""

from __future__ import annotations

from pktpath.errors import PktpathError


class SandboxError(PktpathError):
    """The sandbox could not be built or the packet could not be sent."""
