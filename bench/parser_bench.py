"""Our sip/ parser against the PyPI `sipmessage` package, on what a proxy does per message.

Run: .venv/bin/python bench/parser_bench.py [--n 20000]
Two workloads on the same INVITE (as a carrier would send it, with SDP):
  read  - parse, then read what routing needs: top Via branch, Call-ID, CSeq, To tag, Max-Forwards
  relay - read, then decrement Max-Forwards, add our Via and Record-Route, serialize to bytes
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sipmessage

from sip.message import parse_message

INVITE = (
    b"INVITE sip:5551234@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-8a7f-1;rport\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-carrier-77;received=127.0.0.1\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Dialer 7" <sip:dialer7@127.0.0.1:5070>;tag=1928301774\r\n'
    b"To: <sip:5551234@127.0.0.1:5060>\r\n"
    b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:dialer7@127.0.0.1:5070;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: VICIdial-Asterisk\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 151\r\n"
    b"\r\n"
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
assert len(INVITE.split(b"\r\n\r\n", 1)[1]) == 151

OUR_VIA = b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-lb-1"
OUR_RR = b"<sip:127.0.0.1:5060;lr>"


def ours_read(data):
    msg = parse_message(data)
    return msg.via.branch, msg.call_id, msg.cseq, msg.to_tag, msg.max_forwards


def ours_relay(data):
    msg = parse_message(data)
    msg.via.branch, msg.call_id, msg.cseq, msg.to_tag
    msg.decrement_max_forwards()
    msg.prepend(b"record-route", b"Record-Route", OUR_RR)
    msg.prepend(b"via", b"Via", OUR_VIA)
    return msg.to_bytes()


def theirs_read(data):
    msg = sipmessage.Message.parse(data)
    return msg.via[0].parameters.get("branch"), msg.call_id, msg.cseq, msg.to_address.parameters.get("tag"), msg.max_forwards


def theirs_relay(data):
    msg = sipmessage.Message.parse(data)
    vias = msg.via
    vias[0].parameters.get("branch"), msg.call_id, msg.cseq, msg.to_address.parameters.get("tag")
    msg.max_forwards = msg.max_forwards - 1
    msg.record_route = [sipmessage.Address.parse(OUR_RR.decode()), *msg.record_route]
    msg.via = [sipmessage.Via.parse(OUR_VIA.decode()), *vias]
    return bytes(msg)


def timed(fn, n):
    fn(INVITE)
    best = None
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn(INVITE)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best / n * 1e6  # microseconds per message


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args(argv)
    # Both must agree on what they read, or the race is meaningless.
    ours, theirs = ours_read(INVITE), theirs_read(INVITE)
    assert ours[0].decode() == theirs[0] and ours[1].decode() == theirs[1], (ours, theirs)
    relayed = ours_relay(INVITE)
    assert relayed.startswith(b"INVITE ") and b"Max-Forwards: 68" in relayed and OUR_VIA in relayed
    print(f"sipmessage {sipmessage.__version__}; {args.n} messages per run, best of 3")
    print("| workload | sip/ (us/msg) | sipmessage (us/msg) | sipmessage / sip/ |")
    print("| --- | ---: | ---: | ---: |")
    for name, a, b in (("read", ours_read, theirs_read), ("relay", ours_relay, theirs_relay)):
        us, them = timed(a, args.n), timed(b, args.n)
        print(f"| {name} | {us:.1f} | {them:.1f} | {them / us:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
