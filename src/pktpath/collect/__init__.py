"""``pktpath collect``: write a snapshot (shared/spec/snapshot.md) of this host or a netns.

    from pktpath.collect import collect, render_report, shell_script

    report = collect(Path("snap"), netns="blue")     # or tar=True for snap.tar.gz
    report.files      # per file: command, ok / missing / refused / failed / skipped, why, backend
    report.kernel     # uname -r of the host
    print(render_report(report))                     # includes the plain-shell equivalent

Every file is the unmodified output of a standard command; nothing is ever changed on the
host.  ``backends.txt`` says which iptables backend wrote each dump, ``collect.json``
records the whole run.
"""

from pktpath.collect.run import CollectError, CollectReport, FileStatus, collect, render_report
from pktpath.collect.sources import SOURCES, XTABLES, shell_script

__all__ = ["SOURCES", "XTABLES", "CollectError", "CollectReport", "FileStatus", "collect", "render_report",
           "shell_script"]
