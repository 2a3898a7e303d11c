"""Rebuild a snapshot in network namespaces and ask the real kernel (needs root).

    from pktpath.sandbox import compare, run_trace, sandbox_available

    ok, why = sandbox_available()                  # (False, reason) without root/netns/iptables-legacy
    run = run_trace(Path("snap/"), ["--iif", "eth0", "--src", "10.0.0.1", "--dst", "10.0.0.2"])
    run.trace, run.result                          # shaped like a kernel case's expected.json
    run.raw_log, run.errno, run.evidence           # kernel log lines, local send errno, what was seen

    # a simulator's `pktpath trace --format json` output checked against the kernel:
    diffs = compare({"trace": run.trace, "result": run.result}, sim["trace"], sim["result"],
                    local="--local" in args, strip=True)

``Sandbox(snapshot)`` is the context manager behind ``run_trace``; several ``send()``
calls share one host (and its conntrack table).  The only change made outside the
sandbox's own namespaces is the initial namespace's ``net.netfilter.nf_log_all_netns``
(1 while any sandbox is open, then restored); ``tools/sandbox_gc.py`` cleans up after a
killed process.
"""

from pktpath.sandbox.available import sandbox_available
from pktpath.sandbox.compare import compare
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.sandbox import KernelRun, Sandbox, run_trace

__all__ = ["KernelRun", "Sandbox", "SandboxError", "compare", "run_trace", "sandbox_available"]
