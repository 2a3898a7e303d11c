"""``pktpath verify``: pktpath's prediction against the real kernel, in a sandbox.

    from pktpath.verify import verify_snapshot, render

    v = verify_snapshot(Path("snap/"), ["--iif", "eth0", "--src", "10.0.0.7", "--dst", "10.1.0.9"])
    v.verdict            # "agree" | "differ" | "inconclusive"
    v.exit_status        # 0 | 1 | 2
    print(render(v))     # both traces side by side, first difference marked
    v.to_json()

    from pktpath.verify.sweep import run_sweep     # --random N --seed S

Needs root (network namespaces); raises ``VerifyError`` (exit 2) when it cannot decide.
"""

from pktpath.verify.core import Verification, VerifyError, require_sandbox, verify_snapshot
from pktpath.verify.render import render

__all__ = ["Verification", "VerifyError", "render", "require_sandbox", "verify_snapshot"]
