"""The proxy's heap grows in large steps and is never given back.

Every brk that grows or shrinks a process takes its memory-map lock, and whatever else on the
host walks that process's pages (page reclaim, compaction, a DAMON monitor like the one this
bench machine runs) holds the same lock for reading. Under two CPU burners a proxy was seen
blocked in brk for 2.5 s and once 22 s ("D" state in vma_prepare, neither running nor waiting
for a CPU): every datagram waited and the step failed. glibc's malloc, which serves Python's
objects over 512 bytes (every datagram), grows the heap 128 KiB at a time and trims it as soon as
its top is free, so at 2,000 calls/s the proxy made 241 brk calls in 9 s.

So the heap grows 64 MiB at a time (M_TOP_PAD), is never trimmed (M_TRIM_THRESHOLD), and blocks
up to 32 MiB come from it rather than from mmap (M_MMAP_THRESHOLD): 0 brk calls in the same 9 s,
CPU per call unchanged (bench/README.md). The cost is that the process keeps its peak heap; the
tables that fill it are capped (transactions, dialogs, records), so the peak is too.

Python's own allocator (objects up to 512 bytes) still maps a 1 MiB arena whenever it needs one
more: about 170 in those 9 s, while the transaction tables filled up, and none once they stop
growing. Running on glibc's malloc alone (PYTHONMALLOC=malloc) would remove those too but cost
about 10 % more CPU per parsed message here, so it is not done.
"""

import ctypes
import logging

log = logging.getLogger("proxy.memory")

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # malloc.h
TOP_PAD = 64 << 20
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit
SETTINGS = ((M_TOP_PAD, TOP_PAD), (M_TRIM_THRESHOLD, 2**31 - 1), (M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def settle():
    """Set glibc's malloc as above; False (and one log line) where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.info("heap settings not applied: no glibc mallopt here")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = all(mallopt(param, value) == 1 for param, value in SETTINGS)
    if not ok:
        log.warning("heap settings not applied: mallopt refused them")
    return ok
