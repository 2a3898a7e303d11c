"""``pktpath``: the command-line front end.  Errors become one line and exit status 2."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from pktpath.cli.packet_args import packet_options
from pktpath.errors import PktpathError, UsageError

if TYPE_CHECKING:
    from pktpath.model.snapshot import HostSnapshot


class PktpathGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PktpathError as e:
            click.echo(f"pktpath: {e}", err=True)
            sys.exit(e.exit_status)


@click.group(cls=PktpathGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pktpath")
def cli() -> None:
    """What does this Linux host do to this packet, and why?

    Walks a packet through a host snapshot (iptables-save, ip -j addr/route/rule,
    sysctl...) offline, exactly as the kernel would, and prints the kernel's TRACE
    lines, the rewrites and routing decisions, and a verdict."""


@cli.command()
@click.argument("snapshot", type=click.Path())
@packet_options
@click.option("--icmp-id", help="ICMP echo identifier")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--lenient", is_flag=True, help="load rules pktpath cannot read as uncertain (both outcomes)")
@click.option("--all-paths", is_flag=True, help="text output: show every possible fate in full")
@click.option("--batch", "batch", type=click.Path(allow_dash=True),
              help="trace one packet per line of FILE ('-': standard input); one JSON result per line")
@click.option("--jobs", type=int, help="--batch: worker processes (default: the CPUs)")
def trace(snapshot: str, iif: str | None, local: bool, src: str | None, dst: str, proto: str | None,
          sport: str | None, dport: str | None, icmp_type: str | None, icmp_id: str | None,
          tcp_flags: str | None, mark: str | None, ttl: str | None, length: str | None,
          mac_src: str | None, uid: str | None, fmt: str, lenient: bool, all_paths: bool, batch: str | None,
          jobs: int | None) -> None:
    """Trace one packet through SNAPSHOT (a directory or .tar.gz)."""
    from pktpath.cli.packet_args import build_packet
    from pktpath.engine.simulate import simulate
    from pktpath.io.snapshot import load_snapshot
    from pktpath.trace.render_json import trace_json
    from pktpath.trace.render_text import render_trace

    snap = load_snapshot(snapshot, lenient)
    if batch is not None:
        _trace_batch(snap, batch, jobs)
        return
    if dst is None:
        raise UsageError("--dst is required (or give --batch FILE)")
    pkt = build_packet(snap.net, iif=iif, local=local, src=src, dst=dst, proto=proto or "tcp", sport=sport,
                       dport=dport, icmp_type=icmp_type, tcp_flags=tcp_flags, mark=mark, ttl=ttl,
                       length=length, mac_src=mac_src, uid=uid, icmp_id=icmp_id)
    outcomes = simulate(snap, pkt)
    if fmt == "json":
        click.echo(json.dumps(trace_json(pkt, outcomes, snap.notes), indent=1))
    else:
        render_trace(Console(highlight=False, soft_wrap=True), pkt, outcomes, snap.notes, all_paths)


def _trace_batch(snap: HostSnapshot, batch: str, jobs: int | None) -> None:
    from pktpath.cli.batch import run_batch_bytes
    from pktpath.engine.path import Engine
    from pktpath.engine.simulate import build_host

    try:
        stream = sys.stdin if batch == "-" else open(batch, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise PktpathError(f"{batch}: cannot read ({e.strerror})") from None
    failed = False
    # Bytes straight out: click.echo() would decode-check and scan every 60 KB line for ANSI codes.
    out = click.get_binary_stream("stdout")
    with stream:
        for line in run_batch_bytes(snap, Engine(build_host(snap)), stream, "<stdin>" if batch == "-" else batch,
                                    jobs):
            failed = failed or line.startswith(b'{"error"')
            out.write(line + b"\n")
    out.flush()
    if failed:
        sys.exit(2)


@cli.command()
@click.argument("snapshot", type=click.Path())
@click.option("--iif", help="packet 1 arrives from the wire on this interface")
@click.option("--local", is_flag=True, help="packet 1 is sent by a local process")
@click.option("--src", help="source address of packet 1")
@click.option("--dst", required=True, help="destination address of packet 1")
@click.option("--proto", default="tcp", show_default=True, help="tcp, udp or icmp")
@click.option("--sport", help="source port")
@click.option("--dport", help="destination port")
@click.option("--icmp-type", help="ICMP TYPE[/CODE] of packet 1 (default 8/0)")
@click.option("--icmp-id", help="ICMP echo identifier")
@click.option("--mark", help="socket mark of a --local sender")
@click.option("--then", "then", multiple=True, help="one more packet: reply[:SPEC] or original[:SPEC]")
@click.option("--reply-iif", help="where the responder's packets arrive, or 'none'")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--lenient", is_flag=True, help="load rules pktpath cannot read as uncertain (both outcomes)")
def flow(snapshot: str, iif: str | None, local: bool, src: str | None, dst: str, proto: str, sport: str | None,
         dport: str | None, icmp_type: str | None, icmp_id: str | None, mark: str | None, then: tuple[str, ...],
         reply_iif: str | None, fmt: str, lenient: bool) -> None:
    """Trace a whole exchange: packet 1, the answers, and the packets after them."""
    from pktpath.cli.packet_args import build_packet
    from pktpath.engine.flow import parse_step, run_flow
    from pktpath.engine.path import Engine
    from pktpath.engine.simulate import build_host
    from pktpath.io.snapshot import load_snapshot
    from pktpath.trace.render_flow import flow_json, render_flow

    snap = load_snapshot(snapshot, lenient)
    first = build_packet(snap.net, iif=iif, local=local, src=src, dst=dst, proto=proto, sport=sport, dport=dport,
                         icmp_type=icmp_type, tcp_flags=None, mark=mark, ttl=None, length=None, mac_src=None,
                         uid=None, icmp_id=icmp_id)
    steps = [parse_step(t) for t in then]
    packets = run_flow(Engine(build_host(snap)), first, steps, reply_iif)
    if fmt == "json":
        click.echo(json.dumps(flow_json(packets), indent=1))
    else:
        render_flow(Console(highlight=False, soft_wrap=True), packets)


@cli.command()
@click.argument("snapshot", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def chains(snapshot: str, fmt: str) -> None:
    """The jump graph per table, with empty chains, chains no hook reaches and rules that never match."""
    from dataclasses import asdict

    from pktpath.io.snapshot import load_snapshot
    from pktpath.lint.chains import chain_graph, shadowed_rules

    snap = load_snapshot(snapshot)
    graph, shadowed = chain_graph(snap.ruleset), shadowed_rules(snap.ruleset)
    if fmt == "json":
        click.echo(json.dumps({"chains": [asdict(c) for c in graph], "shadowed": [asdict(s) for s in shadowed]},
                              indent=1))
        return
    console = Console(highlight=False, soft_wrap=True)
    for table in snap.ruleset.tables:
        console.print(f"[bold]*{table}[/bold]")
        for c in (c for c in graph if c.table == table):
            flags = [w for w, on in (("empty", c.empty), ("UNREACHABLE: no hook reaches it", c.unreachable)) if on]
            head = f"  {c.name}" + (" (built-in)" if c.builtin else f" <- {', '.join(c.callers) or 'nobody'}")
            console.print(head + f"  [{c.rules} rules]" + (f"  [yellow]{'; '.join(flags)}[/yellow]" if flags else ""))
            for callee in c.calls:
                console.print(f"      -> {callee}")
    for s in shadowed:
        console.print(f"[yellow]never matches:[/yellow] {s.table}:{s.chain}:rule:{s.number} ({s.origin}) -- rule "
                      f"{s.by} of the same chain already decides every packet it would match\n    {s.rule}")


@cli.command()
@click.argument("snapshot", type=click.Path())
@click.argument("rule_ref")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(snapshot: str, rule_ref: str, fmt: str) -> None:
    """One rule in plain words.  RULE_REF: TABLE:CHAIN:N (filter:INPUT:3) or FILE:LINE."""
    from dataclasses import asdict

    from pktpath.io.snapshot import load_snapshot
    from pktpath.lint.explain import explain_rule

    e = explain_rule(load_snapshot(snapshot).ruleset, rule_ref)
    if fmt == "json":
        click.echo(json.dumps(asdict(e), indent=1))
        return
    click.echo(f"{e.ref}  ({e.origin})\n  {e.rule}")
    click.echo("matches packets with:\n" + "".join(f"  - {m}\n" for m in e.matches), nl=False)
    click.echo(f"then it {e.action}")
    click.echo("reached from: " + "; ".join(e.reached_from))


def _register_commands() -> None:
    from pktpath.cli.collect_verify import add_commands
    from pktpath.cli.route_cmd import add_route_command

    add_route_command(cli)
    add_commands(cli)


_register_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
