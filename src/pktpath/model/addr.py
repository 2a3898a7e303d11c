"""IPv4 addresses as integers: the engine compares and masks them on every rule."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ALL_ONES = 0xFFFFFFFF


def ip_to_int(text: str) -> int:
    """Parse dotted-quad IPv4 text; raise ValueError on anything else."""
    try:
        packed = socket.inet_aton(text)
    except OSError as e:
        raise ValueError(f"not an IPv4 address: {text!r}") from e
    if text.count(".") != 3:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int(struct.unpack("!I", packed)[0])


def int_to_ip(value: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", value & ALL_ONES))


def plen_to_mask(plen: int) -> int:
    return (ALL_ONES << (32 - plen)) & ALL_ONES if plen else 0


def mask_to_plen(mask: int) -> int | None:
    """Prefix length of a contiguous netmask, None for a non-contiguous one."""
    plen = bin(mask).count("1")
    return plen if plen_to_mask(plen) == mask else None


@dataclass(frozen=True, slots=True)
class Prefix:
    """An address with a netmask (``10.0.0.0/8``); the mask may be non-contiguous (iptables allows it)."""

    addr: int
    mask: int

    @classmethod
    def from_plen(cls, addr: int, plen: int) -> Prefix:
        mask = plen_to_mask(plen)
        return cls(addr & mask, mask)

    @classmethod
    def parse(cls, text: str) -> Prefix:
        """``1.2.3.4``, ``1.2.3.0/24`` or ``1.2.3.0/255.255.255.0``; ``default`` is 0/0."""
        if text in ("default", "all", "any"):
            return cls(0, 0)
        addr_text, sep, mask_text = text.partition("/")
        addr = ip_to_int(addr_text)
        if not sep:
            return cls(addr, ALL_ONES)
        if "." in mask_text:
            mask = ip_to_int(mask_text)
        else:
            if not mask_text.isdigit() or int(mask_text) > 32:
                raise ValueError(f"bad prefix length in {text!r}")
            mask = plen_to_mask(int(mask_text))
        return cls(addr & mask, mask)

    @property
    def plen(self) -> int:
        plen = mask_to_plen(self.mask)
        return plen if plen is not None else bin(self.mask).count("1")

    def contains(self, addr: int) -> bool:
        return (addr & self.mask) == self.addr

    def __str__(self) -> str:
        plen = mask_to_plen(self.mask)
        suffix = str(plen) if plen is not None else int_to_ip(self.mask)
        return f"{int_to_ip(self.addr)}/{suffix}"
