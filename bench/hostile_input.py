"""How long one worst-shaped 64 KB datagram holds the event loop in the parser.

Run: .venv/bin/python bench/hostile_input.py [--rounds 5]

Each input is parsed and read the way the proxy reads a message (the top Via, every Via, Route,
Record-Route and Contact element); the figure is the best of --rounds, in ms. Each shape was the
worst of its kind found by fuzzing or by reading; a quadratic path shows as seconds, not ms. The
last line is an ordinary INVITE, for scale.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sip.errors import SipSyntaxError
from sip.message import parse_message

LIMIT = 65535


def _fill(head, unit, tail=b"\r\n\r\n"):
    return head + unit * ((LIMIT - len(head) - len(tail)) // len(unit)) + tail


SHAPES = {
    "Via: < and commas": _fill(b"SIP/2.0 200 OK\r\nVia: <", b","),
    "Contact: quoted elements": _fill(b"SIP/2.0 200 OK\r\nContact: ", b'"a",'),
    "Contact: quote, empty elements": _fill(b'SIP/2.0 200 OK\r\nContact: ""', b","),
    "Route: <a> elements": _fill(b"SIP/2.0 200 OK\r\nRoute: ", b"<a>,"),
    "Route: <,> elements": _fill(b"SIP/2.0 200 OK\r\nRoute: ", b"<,>,"),
    "folded lines": _fill(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nSubject: x\r\n", b" x\r\n", b"\r\n"),
    "Via lines": _fill(b"SIP/2.0 200 OK\r\n", b"Via:\r\n", b"\r\n"),
    "ordinary INVITE": (
        b"INVITE sip:5551234@127.0.0.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-1;rport\r\nMax-Forwards: 70\r\n"
        b'From: "Dialer 7" <sip:dialer7@127.0.0.1:5070>;tag=from1\r\nTo: <sip:5551234@127.0.0.1:5060>\r\n'
        b"Call-ID: bench-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:dialer7@127.0.0.1:5070>\r\n"
        b"Content-Length: 0\r\n\r\n"
    ),
}


def read_all(data):
    try:
        msg = parse_message(data)
    except SipSyntaxError:
        return
    for name in (b"via", b"route", b"record-route", b"contact"):
        try:
            msg.get_all(name)
        except SipSyntaxError:
            pass
    try:
        msg.via
    except SipSyntaxError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"best of {args.rounds}, ms per datagram (parse and read every list):")
    for name, data in SHAPES.items():
        assert len(data) <= LIMIT, name
        best = None
        for _ in range(args.rounds):
            start = time.perf_counter()
            read_all(data)
            took = time.perf_counter() - start
            best = took if best is None else min(best, took)
        print(f"  {name:32} {len(data):6} bytes  {best * 1000:8.3f}")


if __name__ == "__main__":
    main()
