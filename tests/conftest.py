"""Suite-wide settings."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# The validated-chain cache (pktpath.io.facts_cache) lives in a directory of this run only:
# a developer's own cache must not hide a parser change from the tests, nor the tests fill it.
# (xdist workers inherit the variable; the process that made the directory removes it.)
if "PKTPATH_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="pktpath-test-cache-")
    os.environ["PKTPATH_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
