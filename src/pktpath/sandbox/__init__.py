"""Rebuild a snapshot in network namespaces and ask the real kernel (needs root).

    from pktpath.sandbox import run_trace, sandbox_available
    ok, why = sandbox_available()
    run = run_trace(Path("snapshot/"), ["--iif", "eth0", "--src", "10.0.0.1", "--dst", "10.0.0.2"])
    run.trace, run.result, run.raw_log, run.errno

The only change made outside the sandbox's own namespaces is the initial namespace's
``net.netfilter.nf_log_all_netns`` (set to 1 while any sandbox is open, then restored).
"""

from pktpath.sandbox.available import sandbox_available
from pktpath.sandbox.compare import compare
from pktpath.sandbox.errors import SandboxError
from pktpath.sandbox.sandbox import KernelRun, Sandbox, run_trace

__all__ = ["KernelRun", "Sandbox", "SandboxError", "compare", "run_trace", "sandbox_available"]
