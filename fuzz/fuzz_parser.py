"""Harness A: bytes -> sip.message.parse_message, then every accessor the proxy uses.

Run: .venv/bin/python fuzz/fuzz_parser.py -max_total_time=700 /tmp/fuzz-parser/corpus

Input: byte 0 is a mode byte, the rest the datagram.
  bit 0      parse as a stream message (stream=True) too
  bits 1-3   1: repeat the last header line, 2: repeat the last 2 bytes of the last header line,
             3: repeat the last 2 bytes of the first header line, each until the datagram is
             65535 bytes (how a 64 KB datagram of a short pattern is reached); else as is
Rules checked: nothing but SipSyntaxError leaves the parser or an accessor; a message that parsed
parses again from to_bytes() with the same fields; no input <= 65535 bytes takes over 50 ms
(measured under instrumentation: re-time findings without it, see fuzz/retime.py).
An empty corpus directory is seeded first. Findings: $FUZZ_OUT or /tmp/fuzz-parser/found/.
"""

import sys
import time
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

with atheris.instrument_imports():
    from sip import headers as H
    from sip import message as M
    from sip import responses as R
    from sip import uri as U
    from sip.errors import SipSyntaxError

HARNESS = "parser"
SLOW = 0.050
MAX = 65535
LISTS = (b"via", b"route", b"record-route", b"contact")
OTHER = (b"from", b"to", b"call-id", b"cseq", b"max-forwards", b"content-length", b"content-type")


class _Unexpected(Exception):
    """Carries an accessor's unexpected exception out with the accessor's name."""


def _try(where, fn, *args):
    try:
        return fn(*args)
    except SipSyntaxError:
        return None
    except Exception as exc:
        exc.add_note(f"accessor: {where}")
        raise


def amplify(data, how):
    head_end = data.find(b"\r\n\r\n")
    if how == 0 or head_end < 0:
        return data
    first_eol = data.find(b"\r\n")
    if how == 1:  # the last header line, repeated
        start = data.rfind(b"\r\n", 0, head_end)
        if start < 0 or start == head_end:
            return data
        unit = data[start:head_end]  # "\r\nName: value"
        at = head_end
    elif how == 2:
        unit = data[max(0, head_end - 2) : head_end]
        at = head_end
    else:
        second = data.find(b"\r\n", first_eol + 2)
        if second < 0:
            return data
        unit = data[max(first_eol + 2, second - 2) : second]
        at = second
    if not unit:
        return data
    room = MAX - len(data)
    if room <= 0:
        return data
    return data[:at] + unit * (room // len(unit)) + data[at:]


def exercise(msg, data):
    g = _try
    msg.method, msg.uri, msg.code, msg.reason
    repr(msg)
    via = g("via", lambda: msg.via)
    if via is not None:
        via.branch, via.received, via.rport, via.transport, via.host, via.port
        fixed = g("received_via", R.received_via, via, "127.0.0.20", 5070)
        if fixed is not None:
            g("parse_via(received_via)", H.parse_via, fixed.raw)
    for name in ("call_id", "cseq", "from_tag", "to_tag", "max_forwards"):
        g(name, getattr, msg, name)
    g("check", msg.check)
    for name in LISTS:
        g(f"first_of_list({name})", msg.first_of_list, name)
        elements = g(f"get_all({name})", msg.get_all, name) or []
        for e in elements[:50]:
            if name == b"via":
                v = g("parse_via", H.parse_via, e)
                if v is not None:
                    v.branch, v.rport, v.received
                continue
            na = g(f"name_addr({name})", H.name_addr, e, name.decode())
            if na is not None:
                g(f"parse_uri({name})", U.parse_uri, na[0].decode("latin-1"))
                g(f"param({name})", H.param, na[1], b"lr")
    for name in OTHER:
        v = msg.get(name)
        if v is not None:
            g(f"split_commas({name})", H.split_commas, v, name.decode())
            g(f"tag_of({name})", H.tag_of, v, name.decode())
    for name in (b"from", b"to", b"contact"):
        u = g(f"uri_of({name})", msg.uri_of, name)
        if u is not None:
            g(f"parse_uri(uri_of {name})", U.parse_uri, u.decode("latin-1"))
    if msg.method is not None:
        g("parse_uri(R-URI)", U.parse_uri, msg.uri.decode("latin-1"))  # as Proxy.uri() does
        g("parse_uri(R-URI bytes)", U.parse_uri, msg.uri)
        u = g("parse_wire_uri(R-URI)", U.parse_wire_uri, msg.uri)
        if u is not None:
            str(u), u.transport, u.effective_port, u.hostport
        resp = g("response_bytes", lambda: R.response_bytes(msg, 400, b"Bad Request", to_tag=b"400", server=b"lbpanel"))
        if resp is not None:
            g("parse(response_bytes)", M.parse_message, resp)
    # round trip: what we forward must parse again, to the same fields
    out = msg.to_bytes()
    try:
        again = M.parse_message(out)
    except SipSyntaxError as exc:
        _common.found(HARNESS, "roundtrip-unparseable", data, detail=str(exc))
        again = None
    if again is not None and (
        again.names != msg.names
        or again.values != msg.values
        or again.body != msg.body
        or again.method != msg.method
        or again.uri != msg.uri
        or again.code != msg.code
    ):
        _common.found(HARNESS, "roundtrip-differs", data)
    # the edits the proxy makes on a request's way through
    if msg.find(b"via") >= 0:
        g("pop_first(via)", msg.pop_first, b"via")
    if msg.find(b"route") >= 0:
        g("pop_first(route)", msg.pop_first, b"route")
    g("decrement_max_forwards", msg.decrement_max_forwards, 10)
    msg.to_bytes()


def TestOneInput(data):
    if not data:
        return
    raw = bytes(data)
    mode = data[0]
    data = amplify(raw[1:], (mode >> 1) & 7)
    t = time.perf_counter()
    for stream in (False, True) if mode & 1 else (False,):
        try:
            msg = M.parse_message(data, stream=stream)
        except SipSyntaxError:
            continue
        except Exception as exc:  # noqa: BLE001
            _common.found(HARNESS, "parse_message", raw, exc)
            continue
        try:
            exercise(msg, raw)
        except _common.Finding:
            raise
        except Exception as exc:  # noqa: BLE001
            _common.found(HARNESS, "accessor", raw, exc)
    spent = time.perf_counter() - t
    if spent > SLOW and len(data) <= MAX:
        _common.found(HARNESS, f"slow-{_bucket(spent)}", raw, detail=f"{spent * 1000:.0f} ms")


def _bucket(spent):
    return "50ms" if spent < 0.2 else ("200ms" if spent < 1 else "1s")


def seeds():
    sys.path.insert(0, str(_common.ROOT))
    from bench.call_path import SERVERS, in_dialog, invite

    inv = invite(7)
    rr = [b"<sip:127.0.0.1:5060;lr;lbs=0123456789abcdef01>"]
    out = [
        inv,
        in_dialog(b"ACK", 7, 1, rr, SERVERS[1], b"uas"),
        in_dialog(b"BYE", 7, 2, rr, SERVERS[1], b"uas"),
        R.response_bytes(M.parse_message(inv), 180, b"Ringing", to_tag=b"uas", extra=[b"Record-Route: " + rr[0]]),
        R.response_bytes(M.parse_message(inv), 200, b"OK", to_tag=b"uas", extra=[b"Contact: <sip:127.0.0.1:5081>"]),
        b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nv: SIP/2.0/UDP [::1]:5070;branch=z9hG4bK1;rport\r\n"
        b'f: "A \\"q\\"" <sip:a@[::1]>;tag=1\r\nt: sip:b@h.example;tag=2\r\ni: x\r\nCSeq: 1 OPTIONS\r\n'
        b"m: <sip:a@h:5070;transport=tcp>, <sip:b@h>\r\nl: 0\r\n\r\n",
        b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bKx,SIP/2.0/UDP h:1;received=1.2.3.4\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n Route: folded\r\nContent-Length: 0\r\n\r\n",
        b"BYE sips:u@1.2.3.4:5061;transport=tls;lr?h=v SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=b;rport=5\r\n"
        b"Route: <sip:127.0.0.1;lr>,<sip:a,b@c>\r\n\t, <sip:d>\r\nMax-Forwards: 0\r\nFrom: a;tag=x\r\nTo: b;tag=y\r\n"
        b"Call-ID: i\r\nCSeq: 2 BYE\r\n\r\n",
    ]
    return [bytes([m]) + s for s in out for m in (0, 1, 2, 4, 6)]


def main():
    _common.seed_corpus(sys.argv, seeds)
    atheris.Setup(
        _common.default_args(sys.argv, max_len=8192, timeout=20, rss_limit_mb=4096, dict=Path(__file__).with_name("sip.dict")),
        TestOneInput,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
