"""Can this machine run the kernel sandbox?  (root, netns, iptables-legacy, nf_log)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

from pktpath.sandbox.hostlog import ALL_NETNS

TOOLS = ("ip", "nsenter", "unshare", "iptables-legacy", "iptables-legacy-restore", "iptables-legacy-save")


def sandbox_available() -> tuple[bool, str]:
    """(True, "ok") or (False, why not)."""
    if sys.platform != "linux":
        return False, "not Linux"
    if os.geteuid() != 0:
        return False, "needs root (network namespaces, netfilter)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return False, f"{tool} not found (Debian packages iptables, iproute2, util-linux)"
    if not ALL_NETNS.exists():
        return False, f"{ALL_NETNS} missing: kernel without nf_log"
    if not os.access("/dev/kmsg", os.R_OK):
        return False, "/dev/kmsg not readable"
    if importlib.util.find_spec("scapy") is None:
        return False, "scapy not installed (pip install -e '.[test]')"
    try:
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot create a network namespace: {exc}"
    if probe.returncode != 0:
        return False, f"cannot create a network namespace: {probe.stderr.strip()}"
    return True, "ok"
