"""Harness C: a TCP byte stream, cut into random chunks, through sip.framing.StreamFramer.

Run: .venv/bin/python fuzz/fuzz_framing.py -max_total_time=700 /tmp/fuzz-framing/corpus

Input: byte 0 = mode, bytes 1-2 = the seed of the chunk sizes, the rest the stream.
  mode bit 0     max_size 300 instead of the default 65535 (reaches the cap cheaply)
  mode bits 1-2  1: repeat the 2 bytes before the first blank line, 2: the whole stream, until
                 the stream is 70000 bytes (past the default cap)
  mode bits 3-5  the largest chunk: 1, 2, 7, 64, 512, 4096, 65536 or all at once
As proxy/transport.py's TcpConnection does: feed() each chunk; on SipSyntaxError the connection
is closed (stop). Rules: nothing but SipSyntaxError leaves feed(); after each feed() that did not
raise, the buffer holds at most max_size bytes; the messages are the stream's bytes in order,
with only CR/LF skipped between them; they do not depend on how the stream was cut (compared
with feeding it whole, up to where that raised); each parses (stream=True) to a message whose
body is exactly what the framer cut, or raises SipSyntaxError; one feed() takes under 50 ms
(instrumented). Also counted: double-CRLF pings seen whole vs cut.
"""

import random
import sys
import time
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

with atheris.instrument_imports(include=["sip"]):
    from sip.errors import SipSyntaxError
    from sip.framing import StreamFramer
    from sip.message import parse_message

HARNESS = "framing"
SLOW = 0.050
BIG = 70000
CHUNKS = (1, 2, 7, 64, 512, 4096, 65536, 1 << 30)


def amplify(stream, how):
    if how == 1:
        end = stream.find(b"\r\n\r\n")
        if end < 2:
            return stream
        unit = stream[end - 2 : end]
        return stream[:end] + unit * ((BIG - len(stream)) // 2) + stream[end:]
    if how == 2 and stream:
        return (stream * (BIG // len(stream) + 1))[:BIG]
    return stream


def run(stream, sizes, max_size, raw):
    """Feed `stream` in chunks of `sizes`; returns (messages, raised, pings)."""
    f = StreamFramer(max_size)
    out = []
    pos = 0
    i = 0
    while pos < len(stream):
        n = sizes[i % len(sizes)] if sizes else len(stream)
        i += 1
        chunk = stream[pos : pos + n]
        pos += n
        t = time.perf_counter()
        try:
            msgs = f.feed(chunk)
        except SipSyntaxError:
            return out, True, f.pings
        except Exception as exc:  # noqa: BLE001
            _common.found(HARNESS, "feed raised", raw, exc)
            return out, True, f.pings
        spent = time.perf_counter() - t
        if spent > SLOW:
            _common.found(HARNESS, "slow feed", raw, detail=f"{spent * 1000:.0f} ms for a {len(chunk)}-byte chunk")
        if len(f.buf) > max_size:
            _common.found(HARNESS, "buffer over max_size", raw, detail=f"{len(f.buf)} > {max_size}")
        out.extend(msgs)
    return out, False, f.pings


def TestOneInput(data):
    if len(data) < 3:
        return
    raw = bytes(data)
    mode = data[0]
    max_size = 300 if mode & 1 else 65535
    stream = amplify(raw[3:], (mode >> 1) & 3)
    biggest = CHUNKS[(mode >> 3) & 7]
    rng = random.Random(int.from_bytes(raw[1:3], "big"))
    sizes = [rng.randint(1, min(biggest, max(1, len(stream)))) for _ in range(64)]
    cut, cut_raised, cut_pings = run(stream, sizes, max_size, raw)
    whole, whole_raised, whole_pings = run(stream, None, max_size, raw)
    # the messages are the stream, in order, with only CR/LF between them
    pos = 0
    for m in cut:
        while pos < len(stream) and stream[pos] in (0x0D, 0x0A) and not stream.startswith(m, pos):
            pos += 1
        if not stream.startswith(m, pos):
            _common.found(HARNESS, "message is not the next bytes of the stream", raw)
            break
        pos += len(m)
    # cutting must not change the messages (up to where one of the two runs stopped)
    k = min(len(cut), len(whole))
    if cut[:k] != whole[:k] or (not cut_raised and not whole_raised and len(cut) != len(whole)):
        _common.found(HARNESS, "messages depend on how the stream was cut", raw, detail=f"{len(cut)} vs {len(whole)}")
    if cut_raised != whole_raised and len(cut) == len(whole):
        _common.found(HARNESS, "raising depends on how the stream was cut", raw, detail=f"cut {cut_raised} whole {whole_raised}")
    if cut_pings != whole_pings and not cut_raised and not whole_raised:
        _common.found(HARNESS, "pings depend on how the stream was cut", raw, detail=f"cut {cut_pings} whole {whole_pings}")
    for m in whole:
        try:
            msg = parse_message(m, stream=True)
        except SipSyntaxError:
            continue
        except Exception as exc:  # noqa: BLE001
            _common.found(HARNESS, "parse of a framed message raised", raw, exc)
            continue
        head = m.find(b"\r\n\r\n") + 4
        if len(msg.body) != len(m) - head:
            _common.found(
                HARNESS, "framer and parser disagree on the body", raw, detail=f"framed {len(m) - head} parsed {len(msg.body)}"
            )


def seeds():
    sys.path.insert(0, str(_common.ROOT))
    from bench.call_path import SERVERS, in_dialog, invite

    inv, bye = invite(3), in_dialog(b"BYE", 3, 2, [b"<sip:127.0.0.1:5060;lr>"], SERVERS[1], b"uas")
    streams = [
        inv + bye,
        b"\r\n\r\n" + inv + b"\r\n\r\n\r\n" + bye + b"\r\n",
        bye.replace(b"Content-Length: 0", b"l: 5") + b"abcde" + bye,
        inv.replace(b"Content-Length", b"Content-Length ") + inv,
    ]
    return [bytes([m, 1, 2]) + s for s in streams for m in (0, 1, 0x08, 0x18, 0x28, 0x3A, 0x3C)]


def main():
    _common.seed_corpus(sys.argv, seeds)
    args = _common.default_args(sys.argv, max_len=8192, timeout=20, rss_limit_mb=4096, dict=Path(__file__).with_name("sip.dict"))
    atheris.Setup(args, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
