"""The proxy's heap grows in 64 MiB steps and is never trimmed (proxy/memory.py): each brk takes
the process's memory-map lock, and a proxy was seen blocked 2.5 s in one under CPU burners.
Checked in a child process by its program break before, during and after a pile of datagrams."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import ctypes, json, sys
sys.path.insert(0, sys.argv[1])
libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = (ctypes.c_ssize_t,)
if sys.argv[2] == "settle":
    from proxy import memory
    assert memory.settle()
start = libc.sbrk(0)
pile = [bytes(1200) for _ in range(8000)]  # 9.6 MB of datagram-sized objects, from glibc's heap
grown = libc.sbrk(0)
del pile
after = libc.sbrk(0)
print(json.dumps({"start": start, "grown": grown, "after": after}))
"""


def _breaks(mode):
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_heap_grows_in_large_steps_and_is_never_trimmed():
    b = _breaks("settle")
    assert b["grown"] - b["start"] >= 64 << 20  # one step for the whole pile
    assert b["after"] == b["grown"]  # freeing it gave nothing back


def test_without_the_settings_glibc_trims_at_once():
    """The baseline the settings change: the same pile, and its memory goes back as soon as freed."""
    b = _breaks("plain")
    assert b["grown"] - b["start"] < 64 << 20
    assert b["after"] < b["grown"]
