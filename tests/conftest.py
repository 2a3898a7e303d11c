"""Suite-wide settings."""

from __future__ import annotations

import os
import tempfile

# The validated-chain cache (pktpath.io.facts_cache) lives in a directory of this run only:
# a developer's own cache must not hide a parser change from the tests, nor the tests fill it.
os.environ.setdefault("PKTPATH_CACHE_DIR", tempfile.mkdtemp(prefix="pktpath-test-cache-"))
