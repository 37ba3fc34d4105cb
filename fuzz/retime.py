"""Re-time parser inputs without atheris instrumentation (the fuzzer's own timing is inflated).

Run: .venv/bin/python fuzz/retime.py FILE...   (files in fuzz_parser.py's input format)
Prints, per file, the datagram size and the best of 5 times for parse_message and for the whole
accessor battery of fuzz_parser.exercise().
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sip.errors import SipSyntaxError
from sip.message import parse_message


def battery():
    # import the harness without atheris instrumenting anything: stub the instrumentation context
    import atheris

    class _Null:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    atheris.instrument_imports = lambda *a, **k: _Null()
    import fuzz_parser

    return fuzz_parser


def best(fn, n=5):
    out = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        try:
            fn()
        except Exception:  # noqa: BLE001 (timing only: fuzz_parser reports the exceptions)
            pass
        out = min(out, time.perf_counter() - t)
    return out


def main(paths):
    F = battery()
    for p in paths:
        raw = Path(p).read_bytes()
        data = F.amplify(raw[1:], (raw[0] >> 1) & 7)

        def whole():
            try:
                msg = parse_message(data)
            except SipSyntaxError:
                return
            F.exercise(msg, raw)

        print(f"{p}: {len(data)} bytes  parse {best(lambda: parse_message(data)) * 1000:.1f} ms  all {best(whole) * 1000:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
