#!/usr/bin/env python3
"""Clean up after kernel sandboxes whose process was killed (SIGKILL, OOM, power loss).

A sandbox records every namespace it creates in /run/pktpath-sandbox/ns/<name> with its
pid.  This tool deletes only namespaces that have such a record, carry the sandbox prefix
and whose recorded process is gone; it never touches any other namespace.  It also
restores net.netfilter.nf_log_all_netns when every recorded user of it is dead.

    sudo python3 tools/sandbox_gc.py            # list what would be removed
    sudo python3 tools/sandbox_gc.py --delete   # remove it
"""

from __future__ import annotations

import argparse
import sys

from pktpath.sandbox import hostlog
from pktpath.sandbox.netns import OWNER_DIR, PREFIX, NetNS

_alive = hostlog._pid_alive


def stale_namespaces() -> list[str]:
    if not OWNER_DIR.is_dir():
        return []
    stale = []
    for record in sorted(OWNER_DIR.iterdir()):
        try:
            pid = int(record.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if record.name.startswith(PREFIX + "-") and not _alive(pid):
            stale.append(record.name)
    return stale


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delete", action="store_true", help="delete (default: only list)")
    args = ap.parse_args()
    names = stale_namespaces()
    for name in names:
        print(("deleting " if args.delete else "stale ") + name)
        if args.delete:
            NetNS(name).delete()
    if args.delete and hostlog.restore_if_orphaned():
        print("restored net.netfilter.nf_log_all_netns")
    if not names:
        print("nothing stale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
