"""CPU per call of the proxy's own message path, without sockets: what a hot-path change is
judged by on a host too noisy for the SIPp ladder to see a few per cent.

Run: .venv/bin/python bench/call_path.py [--calls 5000] [--rounds 5]
     .venv/bin/python bench/call_path.py --instructions   # under callgrind: the same on any host

Drives `Proxy.on_message` with whole calls, one at a time, as the UDP listener and the server's
socket would: the caller's INVITE, the server's 100, 180 and 200, the caller's ACK and BYE along
the Record-Route, the server's 200 for the BYE. What the proxy sends is captured, not sent, and
each call is checked to have gone through (a path that broke would read as fast). Reports
microseconds per call, best of --rounds, and `parse_message` alone on the same seven messages
as the baseline measured in the same run: compare the ratio across hosts, the microseconds only
within one run. Not in the figure: syscalls, event-loop wake-ups, timers firing (a call here
ends before any is due), the Redis writers (the call records' encoding is timed on its own).

Timings on a shared 2-vCPU VM still move by 15 % between processes. `--instructions` counts
instead: it runs this file twice under valgrind's callgrind (PYTHONHASHSEED=0, so dicts lay out
the same), with 100 and 400 calls and no baseline, and divides the difference by 300: the
instructions one call costs, start-up and warm-up cancelled out, repeatable to a few hundred.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop

from lbcore.contract import DEFAULT_SETTINGS, DestinationSpec, SetSpec, Table
from proxy.core import Proxy
from proxy.transport import UdpListener
from sip.message import parse_message
from sip.responses import response_bytes

PROXY = ("127.0.0.1", 5060)
CALLER = ("127.0.0.1", 5070)
SERVERS = {1: ("127.0.0.1", 5081), 2: ("127.0.0.1", 5082), 3: ("127.0.0.1", 5083)}
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def invite(n):
    return (
        b"INVITE sip:5551234@127.0.0.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%d-1;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Dialer 7" <sip:dialer7@127.0.0.1:5070>;tag=from%d\r\n'
        b"To: <sip:5551234@127.0.0.1:5060>\r\n"
        b"Call-ID: bench-%d@127.0.0.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:dialer7@127.0.0.1:5070>\r\n"
        b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
        b"User-Agent: VICIdial-Asterisk\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: %d\r\n\r\n" % (n, n, n, len(SDP))
    ) + SDP


def in_dialog(method, n, cseq, routes, server, to_tag):
    lines = [
        method + b" sip:%s:%d SIP/2.0" % (server[0].encode(), server[1]),
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%d-%d;rport" % (n, cseq),
        b"Max-Forwards: 70",
        b"From: <sip:dialer7@127.0.0.1:5070>;tag=from%d" % n,
        b"To: <sip:5551234@127.0.0.1:5060>;tag=" + to_tag,
        b"Call-ID: bench-%d@127.0.0.1" % n,
        b"CSeq: %d %s" % (cseq, method),
        *[b"Route: " + r for r in routes],
        b"Content-Length: 0",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def table():
    dests = tuple(
        DestinationSpec(id=n, setid=1, uri=f"sip:{ip}:{port}", host=ip, port=port, transport="udp", weight=w)
        for (n, (ip, port)), w in zip(SERVERS.items(), (50, 30, 20))
    )
    settings = {**DEFAULT_SETTINGS, "trusted_networks": ["127.0.0.0/8"], "default_set": 1}
    return Table(version=1, sets={1: SetSpec(1, "bench", 4, (500, 503), dests)}, source_rules=(), settings=settings)


class Captured:
    """Stands in for the sockets: what the proxy sends, by destination address."""

    def __init__(self):
        self.out = []

    def sendto(self, data, addr):
        self.out.append((addr, data))

    def get_extra_info(self, _name):
        return None

    def take(self):
        out, self.out = self.out, []
        return out


def one_call(core, lis, wire, n, clock):
    """Drive call n through the proxy; returns the seconds spent inside on_message."""
    spent = 0.0
    on_message = core.on_message

    def deliver(data, addr):
        nonlocal spent
        t = clock()
        on_message(data, lis, addr, None)
        spent += clock() - t
        return wire.take()

    out = deliver(invite(n), CALLER)
    fwd = [(a, d) for a, d in out if a in SERVERS.values()]
    assert len(fwd) == 1, f"call {n}: the INVITE was not forwarded once: {out}"
    server, data = fwd[0]
    req = parse_message(data)
    rr = [b"Record-Route: " + v for v in req.get_all(b"record-route")]
    contact = [b"Contact: <sip:%s:%d>" % (server[0].encode(), server[1])]
    deliver(response_bytes(req, 100, b"Trying"), server)
    deliver(response_bytes(req, 180, b"Ringing", to_tag=b"uas", extra=rr + contact), server)
    out = deliver(response_bytes(req, 200, b"OK", to_tag=b"uas", extra=rr + contact), server)
    ok = [parse_message(d) for a, d in out if a == CALLER]
    assert ok and ok[0].code == 200, f"call {n}: no 200 for the caller: {out}"
    routes = ok[0].get_all(b"record-route")
    out = deliver(in_dialog(b"ACK", n, 1, routes, server, b"uas"), CALLER)
    assert [a for a, _ in out] == [server], f"call {n}: the ACK went {out}"
    out = deliver(in_dialog(b"BYE", n, 2, routes, server, b"uas"), CALLER)
    assert [a for a, _ in out] == [server], f"call {n}: the BYE went {out}"
    out = deliver(response_bytes(parse_message(out[0][1]), 200, b"OK"), server)
    assert [a for a, _ in out] == [CALLER], f"call {n}: the BYE's 200 went {out}"
    return spent


def parse_only(messages, clock):
    t = clock()
    for data in messages:
        parse_message(data)
    return clock() - t


async def measure(calls, rounds, baseline=True):
    loop = asyncio.get_running_loop()
    core = Proxy(loop, "bench-call-path")
    wire = Captured()
    lis = UdpListener(core, *PROXY, shared_port=False)
    lis.connection_made(wire)
    core.add_listener(lis)
    core.apply_table(table())
    core.send = lambda proto, addr, data, listener: wire.sendto(data, addr)  # instead of the server's socket
    clock = time.perf_counter
    n = 0
    for _ in range(200):  # warm the caches (URIs, names) and the specializing interpreter
        n += 1
        one_call(core, lis, wire, n, clock)
    # the same seven messages, as they reach the proxy, for the parse-only baseline
    sample = _sample(core, lis, wire, n + 1, clock)
    n += 1
    best_call = best_parse = best_records = float("inf")
    for _ in range(rounds):
        spent = 0.0
        for _ in range(calls):
            n += 1
            spent += one_call(core, lis, wire, n, clock)
        t = clock()
        await core.calllog.encode_queued()
        records = clock() - t
        core.calllog.pending.clear()
        parse = parse_only(sample * calls, clock) if baseline else 1.0
        best_call = min(best_call, spent / calls)
        best_parse = min(best_parse, parse / calls)
        best_records = min(best_records, records / calls)
        await asyncio.sleep(0)  # let the loop run what it queued
    core.stop()
    return best_call * 1e6, best_parse * 1e6, best_records * 1e6


def _sample(core, lis, wire, n, clock):
    seen = []
    real = core.on_message

    def keep(data, listener, addr, conn):
        seen.append(data)
        real(data, listener, addr, conn)

    core.on_message = keep
    try:
        one_call(core, lis, wire, n, clock)
    finally:
        core.on_message = real
    assert len(seen) == 7, seen
    return seen


def instructions(few=100, many=400):
    """Instructions per call: two runs under callgrind, the difference over the extra calls."""
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls in (few, many):
            out = Path(tmp) / f"callgrind.{calls}"
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
            cmd += ["--calls", str(calls), "--rounds", "1", "--no-baseline"]
            subprocess.run(cmd, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, check=True)
            summary = next(line for line in out.read_text().splitlines() if line.startswith("summary:"))
            totals.append(int(summary.split()[1]))
    return (totals[1] - totals[0]) / (many - few)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-baseline", action="store_true", help="skip the parse-only baseline (for --instructions)")
    p.add_argument("--instructions", action="store_true", help="instructions per call under callgrind (~1 min)")
    args = p.parse_args(argv)
    if args.instructions:
        print(f"instructions per call (callgrind, 400 - 100 calls): {instructions():,.0f}")
        return 0
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        call_us, parse_us, records_us = runner.run(measure(args.calls, args.rounds, not args.no_baseline))
    print(f"{args.calls} calls x {args.rounds} rounds, best round, us per call (7 messages in, 7 out):")
    print(f"  proxy message path  {call_us:8.1f}")
    print(f"  call record encode  {records_us:8.1f}")
    print(f"  parse_message only  {parse_us:8.1f}  (baseline)")
    print(f"  ratio path / parse  {call_us / parse_us:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
