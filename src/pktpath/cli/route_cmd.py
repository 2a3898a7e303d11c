"""``pktpath route SNAPSHOT --dst IP ...``: what ``ip route get`` answers on the snapshot's host.

``--format json`` prints exactly the contract of shared/spec/route-json.md: a list holding
one ``ip -j route get``-style object, or ``{"error": ..., "message": ...}``.  Text mode
prints the reasoning (rules tried, table, route, chosen source) and an ``ip route get``
line.  Exit status 0 whenever an answer is printed, 2 for bad input.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import click

from pktpath.engine.routing import (
    ERROR_MESSAGES,
    Flow,
    RouteResult,
    describe_hops,
    route_input,
    route_output,
)
from pktpath.engine.skb import PROTO_NAMES
from pktpath.errors import ParseError, PktpathError, UsageError
from pktpath.model.addr import int_to_ip, ip_to_int
from pktpath.model.net import DEFAULT_RULES, RT_TABLE_MAIN, NetState, Sysctls
from pktpath.parse.iproute_json import (
    complete_routes,
    merge_links,
    parse_addrs,
    parse_links,
    parse_routes,
    parse_rules,
    table_label,
)
from pktpath.parse.sysctl import parse_sysctl

IPPROTO_UDP = 17
SNAPSHOT_FILES = ("ip-addr.json", "ip-link.json", "ip-route.json", "ip-rule.json", "sysctl.txt")


# ---------------------------------------------------------------------------------------------
# Snapshot loading (to move to pktpath.io)


def _read_snapshot_files(path: Path) -> dict[str, str]:
    """The routing-related files of a snapshot directory or ``.tar.gz``, by base name."""
    if path.is_dir():
        return {n: (path / n).read_text() for n in SNAPSHOT_FILES if (path / n).is_file()}
    if path.is_file() and tarfile.is_tarfile(path):
        out: dict[str, str] = {}
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                extracted = tar.extractfile(member) if member.isfile() else None
                if name in SNAPSHOT_FILES and extracted is not None and name not in out:
                    out[name] = io.TextIOWrapper(extracted, encoding="utf-8").read()
        return out
    raise ParseError(str(path), 0, "expected a snapshot directory or a .tar.gz of one")


def load_net_state(path: str | Path, *, lenient: bool = False) -> NetState:
    """Read ip-addr.json, ip-link.json, ip-route.json, ip-rule.json and sysctl.txt of a
    snapshot into a ``NetState``; a missing file means the kernel default."""
    path = Path(path)
    files = _read_snapshot_files(path)
    where = {n: str(path / n) for n in SNAPSHOT_FILES}
    links = parse_addrs(files["ip-addr.json"], where["ip-addr.json"]) if "ip-addr.json" in files else ()
    if "ip-link.json" in files:
        links = merge_links(links, files["ip-link.json"], where["ip-link.json"]) if links else (
            parse_links(files["ip-link.json"], where["ip-link.json"]))
    routes = parse_routes(files["ip-route.json"], where["ip-route.json"]) if "ip-route.json" in files else ()
    rules = parse_rules(files["ip-rule.json"], where["ip-rule.json"]) if "ip-rule.json" in files else ()
    sysctls = (parse_sysctl(files["sysctl.txt"], where["sysctl.txt"], lenient=lenient)
               if "sysctl.txt" in files else Sysctls())
    return NetState(links=links, routes=complete_routes(routes, links),
                    rules=rules or DEFAULT_RULES, sysctls=sysctls)


# ---------------------------------------------------------------------------------------------
# The answer as ``ip -j route get`` prints it


def route_json(result: RouteResult, flow: Flow) -> object:
    """route-json.md: a list with one ``ip -j route get`` object, or the error object."""
    if result.error is not None:
        return {"error": result.error, "message": ERROR_MESSAGES.get(result.error, result.error)}
    obj: dict[str, object] = {}
    if result.type != "unicast":
        obj["type"] = result.type
    obj["dst"] = int_to_ip(flow.dst)
    if flow.src:
        obj["from"] = int_to_ip(flow.src)
    if result.gateway:
        obj["gateway"] = int_to_ip(result.gateway)
    if result.dev:
        obj["dev"] = result.dev
    if result.table and result.table != RT_TABLE_MAIN:
        obj["table"] = table_label(result.table)
    if flow.iif is None and result.prefsrc and result.prefsrc != flow.src:
        obj["prefsrc"] = int_to_ip(result.prefsrc)
    # RTCF_MULTICAST leaks into rtm_flags, where iproute2 reads RTM_F_OFFLOAD_FAILED.
    obj["flags"] = ["rt_offload_failed"] if result.type == "multicast" else []
    if flow.mark:
        obj["mark"] = flow.mark
    if flow.iif is None:
        obj["uid"] = flow.uid
    obj["cache"] = {"local": ["local"], "broadcast": ["local", "brd"], "multicast": ["local", "mc"]}.get(
        result.type, [])
    if flow.iif is not None:
        obj["iif"] = flow.iif
    return [obj]


def route_text(result: RouteResult, flow: Flow) -> str:
    """The reasoning, then the answer in ``ip route get`` words."""
    lines = [f"  {step}" for step in result.steps]
    answer = route_json(result, flow)
    if isinstance(answer, dict):
        lines.append(f"RTNETLINK answers: {answer['message']}  ({answer['error']}: {result.reason})")
        return "\n".join(lines)
    assert isinstance(answer, list) and isinstance(answer[0], dict)
    obj = answer[0]
    words = [] if result.type == "unicast" else [result.type]
    words.append(str(obj["dst"]))
    for key, label in (("from", "from"), ("gateway", "via"), ("dev", "dev"), ("table", "table"),
                       ("prefsrc", "src"), ("iif", "iif")):
        if key in obj:
            words.append(f"{label} {obj[key]}")
    lines.append(" ".join(words))
    if len(result.hops) > 1:
        lines.append(f"  multipath: the hash picks one of {describe_hops(result.hops)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Arguments


def _number(value: str | None, what: str) -> int:
    if value is None:
        return 0
    try:
        return int(value, 0)
    except ValueError:
        raise UsageError(f"{what}: expected a number (decimal or 0x hex), got {value!r}") from None


def _address(value: str | None, what: str) -> int:
    if value is None:
        return 0
    try:
        return ip_to_int(value)
    except ValueError:
        raise UsageError(f"{what}: expected an IPv4 address, got {value!r}") from None


def _ipproto(value: str | None) -> int:
    """``ipproto``; absent means UDP: ``inet_rtm_getroute()`` starts from ``IPPROTO_UDP``."""
    if value is None:
        return IPPROTO_UDP
    if value.lower() in PROTO_NAMES:
        return PROTO_NAMES[value.lower()]
    return _number(value, "--ipproto")


def _check_dev(net: NetState, name: str | None, what: str) -> None:
    if name is not None and net.link(name) is None:
        raise UsageError(f"{what}: no interface {name!r} in the snapshot")


def build_flow(net: NetState, dst: str, src: str | None, iif: str | None, oif: str | None,
               mark: str | None, uid: str | None, ipproto: str | None, sport: str | None,
               dport: str | None, tos: str | None) -> Flow:
    """The flow ``ip route get`` would send the kernel for these arguments."""
    _check_dev(net, iif, "--iif")
    _check_dev(net, oif, "--oif")
    return Flow(dst=_address(dst, "--dst"), src=_address(src, "--src"), iif=iif, oif=oif,
                mark=_number(mark, "--mark"), tos=_number(tos, "--tos"), uid=_number(uid, "--uid"),
                proto=_ipproto(ipproto), sport=_number(sport, "--sport"), dport=_number(dport, "--dport"))


def answer(net: NetState, flow: Flow) -> RouteResult:
    """Input lookup with an iif, output lookup otherwise (as ``inet_rtm_getroute()``)."""
    return route_input(net, flow) if flow.iif is not None else route_output(net, flow)


def _fail(err: PktpathError) -> None:
    click.echo(f"pktpath route: {str(err).splitlines()[0]}", err=True)
    raise SystemExit(err.exit_status)


@click.command("route")
@click.argument("snapshot", type=click.Path(exists=True))
@click.option("--dst", required=True, help="destination address (ip route get ADDRESS)")
@click.option("--src", default=None, help="source address (from)")
@click.option("--iif", default=None, help="input interface: an arriving packet (input lookup)")
@click.option("--oif", default=None, help="output interface")
@click.option("--mark", default=None, help="firewall mark (decimal or 0x hex)")
@click.option("--uid", default=None, help="uid of the sending socket (output lookups)")
@click.option("--ipproto", default=None, help="tcp, udp, icmp or a protocol number")
@click.option("--sport", default=None, help="source port")
@click.option("--dport", default=None, help="destination port")
@click.option("--tos", default=None, help="TOS / DS field byte (0x10 or decimal)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--lenient", is_flag=True, help="skip malformed sysctl lines instead of failing")
def route_command(snapshot: str, dst: str, src: str | None, iif: str | None, oif: str | None,
                  mark: str | None, uid: str | None, ipproto: str | None, sport: str | None,
                  dport: str | None, tos: str | None, fmt: str, lenient: bool) -> None:
    """Answer ``ip route get`` for the host SNAPSHOT describes, with the kernel's reasoning."""
    try:
        net = load_net_state(snapshot, lenient=lenient)
        flow = build_flow(net, dst, src, iif, oif, mark, uid, ipproto, sport, dport, tos)
    except PktpathError as e:
        _fail(e)
        return
    except (OSError, UnicodeDecodeError, tarfile.TarError) as e:
        _fail(ParseError(snapshot, 0, f"cannot read the snapshot: {e}"))
        return
    result = answer(net, flow)
    if fmt == "json":
        click.echo(json.dumps(route_json(result, flow)))
    else:
        click.echo(route_text(result, flow))


def add_route_command(group: click.Group) -> None:
    """Register ``route`` on the ``pktpath`` command group."""
    group.add_command(route_command)
