"""The proxy takes its memory from the system while it starts, not while it carries calls.

Every brk and mmap that grows a process takes its memory-map lock, and whatever else on the host
walks that process's pages (page reclaim, compaction, a DAMON monitor like the one this bench
machine runs) holds the same lock for reading. Under two CPU burners a proxy was seen blocked
in brk for 2.5 s and once 22 s ("D" state in vma_prepare, neither running nor waiting for a CPU):
every datagram waited, and the step failed. At 1,000 calls/s the proxy made 120 brk and 86 mmap
calls in 9 s while its transaction tables filled up. Kamailio allocates its pools once at start.

So the proxy runs on glibc's malloc (PYTHONMALLOC=malloc: Python's own allocator maps and
unmaps 1 MiB arenas as it grows and shrinks), which grows the heap 64 MiB at a time and never
gives it back (MALLOC_TOP_PAD_, MALLOC_TRIM_THRESHOLD_; blocks up to 64 MiB come from the heap,
MALLOC_MMAP_THRESHOLD_). Measured at 2,000 calls/s over 9 s: 3 brk and 0 mmap calls instead of
241 and 174, CPU per call unchanged (bench/README.md). The cost is that the process keeps its
peak size: the tables it fills are capped (transactions, dialogs, records), so the peak is too.

These variables are read when a process starts, so `ensure` starts the proxy again (execve, same
pid) with them set unless they already are. LBPANEL_PROXY_ALLOCATOR=python keeps Python's own.
"""

import logging
import os
import sys

log = logging.getLogger("proxy.memory")

ENV = {
    "PYTHONMALLOC": "malloc",
    "MALLOC_TOP_PAD_": str(64 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
    "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
}
OPT_OUT = "LBPANEL_PROXY_ALLOCATOR"


def wanted(environ=None):
    """The variables to set, {} when they are set or the operator chose Python's allocator."""
    environ = os.environ if environ is None else environ
    if environ.get(OPT_OUT, "").strip().lower() == "python":
        return {}
    return {k: v for k, v in ENV.items() if environ.get(k) != v}


def ensure():
    """Start this process again with the allocator settings, once; returns only if none is needed."""
    missing = wanted()
    if not missing or "pytest" in sys.modules:  # never replace a test run's own process
        return
    if os.environ.get("_LBPANEL_ALLOCATOR_EXEC"):
        log.warning("allocator settings did not take (%s): running with Python's allocator", ", ".join(missing))
        return
    env = {**os.environ, **missing, "_LBPANEL_ALLOCATOR_EXEC": "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
