"""Shrink a finding's input while the harness still reports the same signature (ddmin on bytes).

Run: FUZZ_RAISE=1 .venv/bin/python fuzz/minimize.py parser|proxy|framing IN OUT

Loads the harness in process (instrumented, as when fuzzing), runs IN once to learn the
signature it raises, then removes chunks of bytes, halving the chunk size, keeping every
removal after which the same signature is still raised. Writes the smallest input to OUT.
"""

import importlib
import os
import sys
from pathlib import Path

os.environ["FUZZ_RAISE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

_common.RAISE = True


def sig_of(harness, data):
    try:
        harness.TestOneInput(data)
    except _common.Finding as f:
        text = str(f)
        # the detail (sizes, times, addresses) may change while shrinking; the signature may not
        return text.split(" @ ")[0] + (" @ " + text.split(" @ ")[1].split(" ")[0] if " @ " in text else "")
    return None


def ddmin(data, still):
    n = max(1, len(data) // 2)
    while n >= 1:
        i = 0
        changed = False
        while i < len(data):
            cand = data[:i] + data[i + n :]
            if cand and still(cand):
                data = cand
                changed = True
            else:
                i += n
        if not changed:
            n //= 2
    return data


def main(name, src, dst):
    sys.argv = [sys.argv[0]]
    harness = importlib.import_module(f"fuzz_{name}")
    data = Path(src).read_bytes()
    want = sig_of(harness, data)
    if want is None:
        sys.exit(f"{src}: no finding raised")
    print(f"signature: {want}")
    small = ddmin(data, lambda d: sig_of(harness, d) == want)
    Path(dst).write_bytes(small)
    print(f"{len(data)} -> {len(small)} bytes: {small!r}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
