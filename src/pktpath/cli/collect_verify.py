"""``pktpath collect`` and ``pktpath verify``; ``add_commands(cli)`` registers both.

Exit statuses: collect 0 (written), 2 (nothing usable could be written); verify 0 (pktpath
and the kernel agree), 1 (they differ), 2 (errors, or a difference the sandbox cannot
vouch for); 130 after Ctrl-C, once the sandbox is torn down.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pktpath.cli.packet_args import packet_options
from pktpath.errors import PktpathError


def _fail(exc: PktpathError) -> None:
    click.echo(f"pktpath: {exc}", err=True)
    sys.exit(exc.exit_status)


def _interrupted() -> None:
    click.echo("pktpath: interrupted; every namespace the sandbox created was deleted", err=True)
    sys.exit(130)


@click.command("collect")
@click.argument("out", type=click.Path())
@click.option("--netns", metavar="NAME", help="snapshot this network namespace (ip netns list) instead of the host")
@click.option("--tar", is_flag=True, help="write one OUT.tar.gz instead of a directory")
@click.option("--commands-only", is_flag=True, help="only print the plain shell commands; collect nothing")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def collect_cmd(out: str, netns: str | None, tar: bool, commands_only: bool, fmt: str) -> None:
    """Write a snapshot of this host (or of a network namespace) into OUT.

    Runs the standard read-only commands (iptables-save, ip -j addr/link/route/rule,
    sysctl, ipset save, nft -j list ruleset, conntrack -L...), whichever exist, and says
    which were missing or refused.  Nothing on the host is ever changed."""
    from pktpath.collect import collect, render_report, shell_script

    if commands_only:
        click.echo(shell_script(out, netns), nl=False)
        return
    try:
        report = collect(Path(out), netns=netns, tar=tar)
    except PktpathError as exc:
        _fail(exc)
        return
    if fmt == "json":
        click.echo(json.dumps({**report.to_json(), "script": report.script}, indent=1))
    else:
        click.echo(render_report(report), nl=False)
    if not report.usable:
        sys.exit(2)


def _packet_words(opts: dict[str, Any]) -> list[str]:
    from pktpath.verify.args import PacketArgs

    return PacketArgs(**{k: opts[k] for k in ("iif", "local", "src", "dst", "proto", "sport", "dport",
                                               "icmp_type", "tcp_flags", "mark", "uid", "ttl", "length",
                                               "mac_src")}).words()


@click.command("verify")
@click.argument("snapshot", required=False, type=click.Path())
@packet_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--lenient", is_flag=True, help="let pktpath load rules it cannot read as uncertain")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="seconds to wait for the kernel")
@click.option("--random", "random_n", type=int, metavar="N", help="verify N random scenarios instead of SNAPSHOT")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of --random (same seed, same scenarios)")
@click.option("--out", type=click.Path(), help="with --random: where disagreeing scenarios are saved")
@click.option("--jobs", type=int, default=1, show_default=True, help="with --random: scenarios run in parallel")
@click.option("--only", type=int, metavar="INDEX", help="with --random: run only scenario INDEX of the seed")
@click.option("--keep-all", is_flag=True, help="with --random: save every scenario, agreeing ones too")
def verify_cmd(snapshot: str | None, fmt: str, lenient: bool, timeout: float, random_n: int | None, seed: int,
               out: str | None, jobs: int, only: int | None, keep_all: bool, **packet: Any) -> None:
    """Check pktpath against the real kernel: rebuild SNAPSHOT in fresh network namespaces,
    send the packet, and print pktpath's prediction beside the kernel's TRACE lines.

    Needs root.  Exit 0 when they agree, 1 when they differ, 2 on errors."""
    from pktpath.verify import render, verify_snapshot

    try:
        if random_n is not None:
            _random(random_n, seed, out, jobs, only, keep_all, fmt, timeout, snapshot, packet)
            return
        if snapshot is None:
            raise click.UsageError("give SNAPSHOT and the packet, or --random N")
        if not packet["dst"]:
            raise click.UsageError("--dst is required")
        v = verify_snapshot(Path(snapshot), _packet_words(packet), lenient=lenient, timeout=timeout)
    except PktpathError as exc:
        _fail(exc)
        return
    except KeyboardInterrupt:
        _interrupted()
        return
    if fmt == "json":
        click.echo(json.dumps(v.to_json(), indent=1))
    else:
        click.echo(render(v), nl=False)
    sys.exit(v.exit_status)


def _random(n: int, seed: int, out: str | None, jobs: int, only: int | None, keep_all: bool, fmt: str,
            timeout: float, snapshot: str | None, packet: dict[str, Any]) -> None:
    from pktpath.verify.sweep import render_sweep, run_sweep

    if snapshot is not None or any(v for v in packet.values()):
        raise click.UsageError("--random generates its own snapshots and packets: give neither")
    out_dir = Path(out) if out else Path(f"pktpath-verify-seed-{seed}")
    progress = None if fmt == "json" else (lambda line: click.echo(line, err=True))
    report = run_sweep(n, seed, out_dir, jobs=jobs, only=only, keep_all=keep_all, timeout=timeout,
                       progress=progress)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        click.echo(render_sweep(report), nl=False)
    sys.exit(report.exit_status)


def add_commands(group: click.Group) -> None:
    """Register ``collect`` and ``verify`` on the pktpath command group."""
    group.add_command(collect_cmd, "collect")
    group.add_command(verify_cmd, "verify")
