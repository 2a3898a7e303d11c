"""The text of a ``TRACE:`` kernel log line (net/netfilter/nf_log_syslog.c,
``nf_log_dump_packet_common()`` and ``dump_ipv4_packet()``), for one packet state.

A line is ``"TRACE: " + label + tail``: only the label differs between the lines logged
while the packet and the hook's devices stay the same, so the walk formats the tail once
per packet state (``trace_tail``) and reuses it."""

from __future__ import annotations

from pktpath.engine.skb import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_FLAG_NAMES, Skb, proto_name
from pktpath.model.addr import int_to_ip

_FLAG_ORDER = ("CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN")


def trace_tail(in_dev: str | None, out_dev: str | None, in_mac: str | None, src: int, dst: int, length: int,
               tos: int, ttl: int, ident: int, proto: int, sport: int | None, dport: int | None, tcp_flags: int,
               icmp_type: int | None, icmp_code: int | None, icmp_id: int | None, mark: int,
               mac_src: str | None) -> str:
    """Everything of the line after the label: `` IN=... OUT=... [MAC=...] SRC=... `` to the end."""
    before, after = trace_tail_split(in_dev, out_dev, in_mac, src, dst, length, tos, ttl, ident, proto, dport,
                                     tcp_flags, icmp_type, icmp_code, icmp_id, mark, mac_src)
    return f"{before}{sport}{after}" if proto in SPT_PROTOS else before


SPT_PROTOS = (IPPROTO_TCP, IPPROTO_UDP)  # the protocols whose line shows the source port (SPT=)


def trace_tail_split(in_dev: str | None, out_dev: str | None, in_mac: str | None, src: int, dst: int, length: int,
                     tos: int, ttl: int, ident: int, proto: int, dport: int | None, tcp_flags: int,
                     icmp_type: int | None, icmp_code: int | None, icmp_id: int | None, mark: int,
                     mac_src: str | None) -> tuple[str, str]:
    """``trace_tail`` around the source port: for TCP and UDP the tail is ``before + SPORT +
    after``; for other protocols (which do not show it) ``before`` is the whole tail and
    ``after`` is empty.  A walk's packets often differ only in their source port."""
    parts = [f" IN={in_dev or ''} OUT={out_dev or ''}"]
    if in_dev is not None:
        dst_mac = in_mac or "00:00:00:00:00:00"
        src_mac = mac_src or "00:00:00:00:00:00"
        parts.append(f"MAC={dst_mac}:{src_mac}:08:00")
    parts.append(f"SRC={int_to_ip(src)} DST={int_to_ip(dst)} LEN={length} "
                 f"TOS=0x{tos & 0xFC:02X} PREC=0x{tos & 0xE0:02X} TTL={ttl} ID={ident}")
    if proto == IPPROTO_TCP:
        flags = " ".join(f for f in _FLAG_ORDER if tcp_flags & TCP_FLAG_NAMES[f])
        parts.append("PROTO=TCP SPT=")
        rest = [f" DPT={dport} SEQ=0 ACK=0 WINDOW=0 RES=0x00 " + (flags + " " if flags else "") + "URGP=0"]
    elif proto == IPPROTO_UDP:
        parts.append("PROTO=UDP SPT=")
        rest = [f" DPT={dport} LEN={max(length - 20, 8)}"]
    else:
        if proto == IPPROTO_ICMP:
            parts.append(f"PROTO=ICMP TYPE={icmp_type or 0} CODE={icmp_code or 0}"
                         + (f" ID={icmp_id} SEQ=0" if icmp_type in (0, 8) else ""))
        else:
            parts.append(f"PROTO={proto_name(proto).upper() if not proto_name(proto).isdigit() else proto}")
        if mark:
            parts.append(f"MARK=0x{mark:x}")
        return " ".join(parts) + " ", ""
    if mark:
        rest.append(f"MARK=0x{mark:x}")
    return " ".join(parts), " ".join(rest) + " "


def trace_line(label: str, skb: Skb, in_dev: str | None, out_dev: str | None, in_mac: str | None) -> str:
    return "TRACE: " + label + trace_tail(
        in_dev, out_dev, in_mac, skb.src, skb.dst, skb.length, skb.tos, skb.ttl, skb.ident, skb.proto, skb.sport,
        skb.dport, skb.tcp_flags, skb.icmp_type, skb.icmp_code, skb.icmp_id, skb.mark, skb.mac_src)
