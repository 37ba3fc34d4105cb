"""Ask the kernel for a short scheduler slice: run sooner when a datagram wakes the proxy while a
CPU-bound neighbour holds the CPU.

Since Linux 6.12 the fair scheduler (EEVDF) lets a task choose its slice (sched_setattr's
sched_runtime, for SCHED_OTHER too). It is not a priority: the proxy's share of the CPU stays
that of nice 0. What changes is its deadline. A task with a short slice is picked ahead of one
with a long slice when both may run, so a woken proxy gets the CPU at the next pick instead of
after the neighbour's slice (1.4 ms by default on a 2-vCPU host, where one SIP message needs
about 20 us). No privilege is needed. Older kernels ignore the field for SCHED_OTHER.

LBPANEL_SCHED_SLICE_US sets it (100-100000 us, the kernel's bounds); 0 leaves the kernel's default.
"""

import ctypes
import logging
import os
import platform
import struct

log = logging.getLogger("proxy")

DEFAULT_US = 100
# struct sched_attr, SCHED_ATTR_SIZE_VER1: size, policy, flags, nice, priority, runtime,
# deadline, period, util_min, util_max
_ATTR = struct.Struct("IIQiIQQQII")
_SCHED_OTHER = 0
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # sched_setattr, sched_getattr


def slice_us(env=os.environ):
    raw = env.get("LBPANEL_SCHED_SLICE_US", "").strip()
    if not raw:
        return DEFAULT_US
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"LBPANEL_SCHED_SLICE_US must be a number of microseconds, got {raw!r}") from None
    if value != 0 and not 100 <= value <= 100_000:
        raise ValueError(f"LBPANEL_SCHED_SLICE_US must be 0 (kernel default) or 100-100000, got {value}")
    return value


def request(us):
    """Ask for a `us`-microsecond slice for the calling thread (and the threads it starts).
    Returns the slice the kernel then reports, in us, or None where it cannot be asked."""
    numbers = _SYSCALLS.get(platform.machine())
    if not us or numbers is None:
        return None
    setattr_nr, getattr_nr = numbers
    libc = ctypes.CDLL(None, use_errno=True)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = ctypes.create_string_buffer(_ATTR.pack(_ATTR.size, _SCHED_OTHER, 0, nice, 0, us * 1000, 0, 0, 0, 0), _ATTR.size)
    if libc.syscall(setattr_nr, 0, attr, 0) != 0:
        err = ctypes.get_errno()
        log.info("scheduler slice left at the kernel's default: sched_setattr: %s", os.strerror(err))
        return None
    got = ctypes.create_string_buffer(_ATTR.size)
    if libc.syscall(getattr_nr, 0, got, _ATTR.size, 0) != 0:
        return None
    return _ATTR.unpack(got.raw)[5] // 1000
