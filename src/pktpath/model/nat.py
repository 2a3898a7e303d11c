"""NAT ranges (struct nf_nat_range2): what a DNAT/SNAT/MASQUERADE/REDIRECT/NETMAP asks for."""

from __future__ import annotations

from dataclasses import dataclass

from pktpath.model.addr import int_to_ip

NF_NAT_MANIP_SRC = "SRC"
NF_NAT_MANIP_DST = "DST"


@dataclass(frozen=True, slots=True)
class NatRange:
    min_addr: int | None = None  # None: keep the address (a ports-only range)
    max_addr: int | None = None
    min_port: int | None = None  # None: NF_NAT_RANGE_PROTO_SPECIFIED unset
    max_port: int | None = None
    random: bool = False
    random_fully: bool = False
    persistent: bool = False

    def render(self) -> str:
        out = ""
        if self.min_addr is not None:
            out = int_to_ip(self.min_addr)
            if self.max_addr is not None and self.max_addr != self.min_addr:
                out += "-" + int_to_ip(self.max_addr)
        if self.min_port is not None:
            out += f":{self.min_port}"
            if self.max_port is not None and self.max_port != self.min_port:
                out += f"-{self.max_port}"
        return out
