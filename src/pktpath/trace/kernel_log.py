"""The text of a ``TRACE:`` kernel log line (net/netfilter/nf_log_syslog.c,
``nf_log_dump_packet_common()`` and ``dump_ipv4_packet()``), for one packet state."""

from __future__ import annotations

from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_FLAG_NAMES, Skb, proto_name
from pktpath.model.addr import int_to_ip

_FLAG_ORDER = ("CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN")


def trace_line(label: str, skb: Skb, in_dev: str | None, out_dev: str | None, in_mac: str | None) -> str:
    parts = [f"TRACE: {label} IN={in_dev or ''} OUT={out_dev or ''}"]
    if in_dev is not None:
        dst_mac = in_mac or "00:00:00:00:00:00"
        src_mac = skb.mac_src or "00:00:00:00:00:00"
        parts.append(f"MAC={dst_mac}:{src_mac}:08:00")
    parts.append(f"SRC={int_to_ip(skb.src)} DST={int_to_ip(skb.dst)} LEN={skb.length} "
                 f"TOS=0x{skb.tos & 0xFC:02X} PREC=0x{skb.tos & 0xE0:02X} TTL={skb.ttl} ID={skb.ident}")
    if skb.proto == IPPROTO_TCP:
        flags = " ".join(f for f in _FLAG_ORDER if skb.tcp_flags & TCP_FLAG_NAMES[f])
        parts.append(f"PROTO=TCP SPT={skb.sport} DPT={skb.dport} SEQ=0 ACK=0 WINDOW=0 RES=0x00 "
                     + (flags + " " if flags else "") + "URGP=0")
    elif skb.proto == IPPROTO_UDP:
        parts.append(f"PROTO=UDP SPT={skb.sport} DPT={skb.dport} LEN={max(skb.length - 20, 8)}")
    elif skb.proto == IPPROTO_ICMP:
        parts.append(f"PROTO=ICMP TYPE={skb.icmp_type or 0} CODE={skb.icmp_code or 0}"
                     + (f" ID={skb.icmp_id} SEQ=0" if skb.icmp_type in (0, 8) else ""))
    else:
        parts.append(f"PROTO={proto_name(skb.proto).upper() if not proto_name(skb.proto).isdigit() else skb.proto}")
    if skb.mark:
        parts.append(f"MARK=0x{skb.mark:x}")
    return " ".join(parts) + " "
