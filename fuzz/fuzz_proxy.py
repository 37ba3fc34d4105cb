"""Harness B: mutated calls through Proxy.on_message, in process (after bench/call_path.py).

Run: .venv/bin/python fuzz/fuzz_proxy.py -max_total_time=700 /tmp/fuzz-proxy/corpus

One Proxy for the whole run, on a uvloop loop that runs between inputs (so its timers fire in
real time: retransmissions, fr_timer, lingering transactions swept after 32 s). Sockets are a
fake that captures what is sent; DNS is stubbed (IP literals resolve, names never do).

Addresses: the proxy 127.0.0.1:5060; servers 127.0.0.1:5081-5083 (trusted); a trusted caller
127.0.0.10:5070 (the dialer); an untrusted peer 127.0.0.20:5070.

Input: byte 0 = flags (bit 0: first send a fresh, valid INVITE of call n from the trusted caller,
and learn which server got it), then up to 8 messages joined by b"|||\\n". Each message is one
selector byte and the datagram, in which @N@ (the call's number), @BR@ (the branch the proxy
put on the forwarded INVITE), @BR2@ (the branch of the last request the proxy sent a server),
@SIG@ (the dialog signature of call n) and @SRV@ (host:port of the server that got the INVITE)
are replaced first. Selector: bits 0-2 the source (0 trusted caller, 1 untrusted peer, 2 the
server that got the INVITE, 3-5 server 1-3, 6-7 as 0-1); bit 3: over a (fake) TCP connection;
bits 4-5: 1 repeat the last header line, 2 its last 2 bytes, up to a 65535-byte datagram.

Rules: no exception out of on_message; no log record at ERROR or above from the 'proxy' loggers
(operational errors listed in OPERATIONAL are counted, not reported); what a message from the
untrusted peer makes us send goes only to a server or to the peer's own IP; every server
transaction a message creates either has a final answer or a live branch (else it never
lingers out: a leak that also counts against max_transactions); the tables stay under their
caps; one message takes under 50 ms (instrumented: re-time a finding without atheris).
"""

import asyncio
import itertools
import logging
import os
import sys
import time
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

with atheris.instrument_imports(include=["sip", "proxy"]):
    import proxy.core
    import proxy.routing
    import proxy.transactions  # noqa: F401
    from proxy.core import Proxy
    from proxy.resolver import UNRESOLVABLE, literal
    from proxy.transport import UdpListener
    from sip.message import parse_message
    from sip.responses import response_bytes

import uvloop

from bench.call_path import SDP, in_dialog
from lbcore.contract import DEFAULT_SETTINGS, DestinationSpec, SetSpec, Table

HARNESS = "proxy"
PROXY = ("127.0.0.1", 5060)
CALLER = ("127.0.0.10", 5070)
PEER = ("127.0.0.20", 5070)
SERVERS = {1: ("127.0.0.1", 5081), 2: ("127.0.0.1", 5082), 3: ("127.0.0.1", 5083)}
SERVER_ADDRS = set(SERVERS.values())
SEP = b"|||\n"
MAX = 65535
SLOW = 0.050
MAX_TRANSACTIONS = 20000
# log.error lines that report the state of the servers, not a bug: counted, not findings
OPERATIONAL = ("no usable destination in set", "all destinations exhausted")


def table():
    dests = tuple(
        DestinationSpec(id=n, setid=1, uri=f"sip:{ip}:{port}", host=ip, port=port, transport="udp", weight=w)
        for (n, (ip, port)), w in zip(SERVERS.items(), (50, 30, 20))
    )
    settings = {
        **DEFAULT_SETTINGS,
        "trusted_networks": ["127.0.0.1/32", "127.0.0.10/32"],
        "default_set": 1,
        "max_transactions": MAX_TRANSACTIONS,
        "max_transactions_per_source": 1000,
        "dialog_secret": "fuzz",
    }
    return Table(version=1, sets={1: SetSpec(1, "fuzz", 4, (500, 503), dests)}, source_rules=(), settings=settings)


class Captured:
    def __init__(self):
        self.out = []

    def sendto(self, data, addr):
        self.out.append((tuple(addr), data))

    def get_extra_info(self, _name):
        return None

    def take(self):
        out, self.out = self.out, []
        return out


class FakeConn:
    """What on_message needs of a TcpConnection: send() and the flags."""

    def __init__(self, wire, peer):
        self.wire = wire
        self.peer = peer
        self.closed = False
        self.tls = False

    def send(self, data):
        self.wire.sendto(data, self.peer)


class Grab(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


# -- the proxy, built once ------------------------------------------------------

loop = uvloop.new_event_loop()
asyncio.set_event_loop(loop)
wire = Captured()
grab = Grab()
stats = {"inputs": 0, "messages": 0, "operational_errors": 0, "trusted_offpath_sends": 0, "names_asked": 0}


async def _build():
    core = Proxy(asyncio.get_running_loop(), "fuzz")
    lis = UdpListener(core, *PROXY, shared_port=False)
    lis.connection_made(wire)
    core.add_listener(lis)
    core.apply_table(table())
    core.send = lambda proto, addr, data, listener: wire.sendto(data, addr)
    core.crash_logs.per_second = 10**9  # every crash reaches the log (the quota would hide repeats)

    def resolve(host, untrusted, done):
        ip = literal(host)
        if ip is None:
            stats["names_asked"] += 1
            done(None, UNRESOLVABLE)
        else:
            done(ip, None)

    core.resolver.resolve = resolve
    core.wheel.start()
    core.sweeper = core.loop.call_later(1.0, core._sweep)
    return core, lis


core, lis = loop.run_until_complete(_build())
plog = logging.getLogger("proxy")
plog.addHandler(grab)
plog.setLevel(logging.ERROR)  # warnings are rate-limited anyway; do not pay for them
plog.propagate = False
logging.getLogger("lbcore").setLevel(logging.CRITICAL)
counter = itertools.count(1)


def pump():
    """Let the loop run what is due (timers, the sweep)."""
    loop.run_until_complete(asyncio.sleep(0))


def invite(n):
    return (
        b"INVITE sip:5551234@127.0.0.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.10:5070;branch=z9hG4bK-%d-1;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Dialer 7" <sip:dialer7@127.0.0.10:5070>;tag=from%d\r\n'
        b"To: <sip:5551234@127.0.0.1:5060>\r\n"
        b"Call-ID: fz-%d@127.0.0.10\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:dialer7@127.0.0.10:5070>\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: %d\r\n\r\n" % (n, n, n, len(SDP))
    ) + SDP


def sig(n):
    return core.dialog_sig(b"fz-%d@127.0.0.10" % n, b"from%d" % n)


def amplify(data, how):
    head_end = data.find(b"\r\n\r\n")
    if how == 0 or head_end < 0:
        return data
    if how == 1:
        start = data.rfind(b"\r\n", 0, head_end)
        unit = data[start:head_end] if start >= 0 else b""
    else:
        unit = data[max(0, head_end - 2) : head_end]
    room = MAX - len(data)
    if not unit or room <= 0:
        return data
    return data[:head_end] + unit * (room // len(unit)) + data[head_end:]


def _top_branch(data):
    try:
        return parse_message(data).via.branch
    except Exception:  # noqa: BLE001 (our own output: a harness helper, not the rule under test)
        return None


class Ctx:
    def __init__(self, n):
        self.n = n
        self.br = b"z9hG4bKnone"
        self.br2 = b"z9hG4bKnone"
        self.srv = SERVERS[1]
        self.created = []  # keys of the server transactions this input created

    def fill(self, t):
        if b"@" not in t:
            return t
        return (
            t.replace(b"@N@", b"%d" % self.n)
            .replace(b"@BR2@", self.br2)
            .replace(b"@BR@", self.br)
            .replace(b"@SIG@", sig(self.n))
            .replace(b"@SRV@", b"%s:%d" % (self.srv[0].encode(), self.srv[1]))
        )

    def learn(self, sent):
        for addr, data in sent:
            if addr in SERVER_ADDRS and not data.startswith(b"SIP/2.0 "):
                b = _top_branch(data)
                if b:
                    self.br2 = b


def deliver(raw, data, src, conn, ctx, untrusted):
    """One message in; every rule checked on what it did."""
    grab.records.clear()
    servers = core.servers
    before = len(servers)
    t = time.perf_counter()
    try:
        core.on_message(data, lis, src, conn)
    except Exception as exc:  # noqa: BLE001
        _common.found(HARNESS, "on_message raised", raw, exc)
    spent = time.perf_counter() - t
    stats["messages"] += 1
    if spent > SLOW and len(data) <= MAX:
        _common.found(
            HARNESS, f"slow-{'50ms' if spent < 0.2 else ('200ms' if spent < 1 else '1s')}", raw, detail=f"{spent * 1000:.0f} ms"
        )
    for rec in grab.records:
        text = rec.getMessage()
        if rec.exc_info is None and text.startswith(OPERATIONAL):
            stats["operational_errors"] += 1
            continue
        if rec.exc_info is not None:
            exc = rec.exc_info[1]
            _common.found(HARNESS, f"logged {rec.name}", raw, exc, detail=text)
        else:
            _common.found(HARNESS, f"logged {rec.name}: {rec.msg}", raw, detail=text)
    grab.records.clear()
    sent = wire.take()
    for addr, _out in sent:
        if addr in SERVER_ADDRS or addr[0] == src[0]:
            continue
        if untrusted:
            where = "the trusted caller" if addr[0] == CALLER[0] else "an address that is neither it nor a server"
            _common.found(HARNESS, f"untrusted source made us send to {where}", raw, detail=f"to {addr} from {src}")
        else:
            stats["trusted_offpath_sends"] += 1
    ctx.learn(sent)
    added = len(servers) - before
    if added > 0:
        ctx.created.extend(itertools.islice(reversed(servers), added))
    return sent


def check_tables():
    v = core.view
    sizes = {
        "servers": len(core.servers),
        "clients": len(core.clients),
        "by_source": sum(core.by_source.values()),
        "calling_by_addr": sum(len(s) for s in core.calling_by_addr.values()),
        "ringing_by_addr": sum(len(s) for s in core.ringing_by_addr.values()),
        "uri_cache": len(core.uri_cache),
        "dialogs": len(core.accounting.dialogs),
        "server_linger": len(core.server_linger),
        "client_linger": len(core.client_linger),
        "wheel": len(core.wheel),
        "pending_invites": core.pending_invites,
    }
    if sizes["servers"] > v.max_transactions:
        _common.found(HARNESS, "servers over max_transactions", b"", detail=str(sizes))
    if any(n > v.max_per_source for n in core.by_source.values()):
        _common.found(HARNESS, "by_source over max_per_source", b"", detail=str(sizes))
    if sizes["clients"] > 10 * v.max_transactions:
        _common.found(HARNESS, "clients table runaway", b"", detail=str(sizes))
    if core.pending_invites < 0:
        _common.found(HARNESS, "pending_invites below zero", b"", detail=str(sizes))
    return sizes


SOURCES = (CALLER, PEER, None, SERVERS[1], SERVERS[2], SERVERS[3], CALLER, PEER)


def TestOneInput(data):
    if not data:
        return
    raw = bytes(data)
    n = next(counter)
    ctx = Ctx(n)
    stats["inputs"] += 1
    core.health.clear()  # keep every server usable: a fuzzed 503 marks one suspect for 30 s
    if raw[0] & 1:
        sent = deliver(raw, invite(n), CALLER, None, ctx, False)
        for addr, out in sent:
            if addr in SERVER_ADDRS:
                ctx.srv = addr
                ctx.br = _top_branch(out) or ctx.br
                ctx.br2 = ctx.br
    for chunk in raw[1:].split(SEP)[:8]:
        if not chunk:
            continue
        sel = chunk[0]
        src = SOURCES[sel & 7] or ctx.srv
        msg = amplify(ctx.fill(chunk[1:]), (sel >> 4) & 3)
        conn = FakeConn(wire, src) if sel & 8 else None
        deliver(raw, msg, src, conn, ctx, src == PEER)
    # every server transaction the input created must end by itself: a final answer, or a branch
    # whose fr_timer is armed (else it never lingers out, and counts against max_transactions)
    for key in ctx.created:
        st = core.servers.get(key)
        if (
            st is not None
            and st.final_code is None
            and not any(ct.t_fr is not None and ct.t_fr.active and not ct.abandoned for ct in st.branches)
        ):
            why = "no branch" if not st.branches else ",".join(f"state={ct.state} abandoned={ct.abandoned}" for ct in st.branches)
            _common.found(
                HARNESS,
                f"{st.method.decode('latin-1')} server transaction with no final answer and no live branch (never lingers out)",
                raw,
                detail=f"source={st.source} {why}",
            )
            break
    pump()
    late = wire.take()  # timers that fired: retransmissions, CANCELs, 408s
    for addr, _ in late:
        if addr not in SERVER_ADDRS and addr[0] not in (CALLER[0], PEER[0]):
            stats["trusted_offpath_sends"] += 1
    grab.records.clear()
    core.calllog.queue.clear()  # emptied every flush in production (Redis or not)
    core.calllog.pending.clear()
    if stats["inputs"] % 2000 == 0:
        sizes = check_tables()
        print(f"#TABLES inputs={stats['inputs']} {sizes} {stats}", file=sys.stderr, flush=True)


# -- seeds ---------------------------------------------------------------------


def _seed_call():
    """A whole call through a scratch proxy-less template: the 7 messages with placeholders."""
    n = 0  # placeholders stand for everything call-specific
    inv = parse_message(
        invite(1).replace(b"fz-1", b"fz-@N@").replace(b"from1", b"from@N@").replace(b"z9hG4bK-1-1", b"z9hG4bK-@N@-1")
    )
    # what the server sees: our Via on top and our signed Record-Route
    fwd = (
        inv.start_line()
        + b"\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=@BR@\r\nRecord-Route: <sip:127.0.0.1:5060;lr;lbs=@SIG@>\r\n"
        + inv.head_bytes()
        + inv.body
    )
    req = parse_message(fwd)
    rr = [b"Record-Route: <sip:127.0.0.1:5060;lr;lbs=@SIG@>"]
    contact = [b"Contact: <sip:@SRV@>"]
    r100 = response_bytes(req, 100, b"Trying")
    r180 = response_bytes(req, 180, b"Ringing", to_tag=b"uas", extra=rr + contact)
    r200 = response_bytes(req, 200, b"OK", to_tag=b"uas", extra=rr + contact)
    r486 = response_bytes(req, 486, b"Busy Here", to_tag=b"uas")
    r503 = response_bytes(req, 503, b"Service Unavailable", to_tag=b"uas")
    routes = [b"<sip:127.0.0.1:5060;lr;lbs=@SIG@>"]

    def dlg(method, cseq):
        m = in_dialog(method, n, cseq, routes, ("@SRV@", 0), b"uas")
        return (
            m.replace(b"sip:@SRV@:0", b"sip:@SRV@")
            .replace(b"127.0.0.1:5070", b"127.0.0.10:5070")
            .replace(b"-0-", b"-@N@-")
            .replace(b"tag=from0", b"tag=from@N@")
            .replace(b"bench-0@127.0.0.1", b"fz-@N@@127.0.0.10")
        )

    ack, bye = dlg(b"ACK", 1), dlg(b"BYE", 2)
    bye_fwd = bye.replace(b"Via: ", b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=@BR2@\r\nVia: ", 1)
    bye_200 = response_bytes(parse_message(bye_fwd), 200, b"OK")
    cancel = (
        invite(1)
        .split(b"\r\n\r\n")[0]
        .replace(b"INVITE sip", b"CANCEL sip")
        .replace(b"1 INVITE", b"1 CANCEL")
        .replace(b"fz-1", b"fz-@N@")
        .replace(b"from1", b"from@N@")
        .replace(b"z9hG4bK-1-1", b"z9hG4bK-@N@-1")
        .replace(b"Content-Length: %d" % len(SDP), b"Content-Length: 0")
        + b"\r\n\r\n"
    )
    # the callee hangs up: the server's BYE toward the caller, along the Record-Route
    callee_bye = (
        b"BYE sip:dialer7@127.0.0.10:5070 SIP/2.0\r\nVia: SIP/2.0/UDP @SRV@;branch=z9hG4bKsrv@N@\r\n"
        b"Route: <sip:127.0.0.1:5060;lr;lbs=@SIG@>\r\nMax-Forwards: 70\r\n"
        b"From: <sip:5551234@127.0.0.1:5060>;tag=uas\r\nTo: <sip:dialer7@127.0.0.10:5070>;tag=from@N@\r\n"
        b"Call-ID: fz-@N@@127.0.0.10\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    options = (
        b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.10:5070;branch=z9hG4bKo@N@;rport\r\n"
        b"From: <sip:p@127.0.0.10>;tag=o\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: o-@N@\r\nCSeq: 1 OPTIONS\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    stray = r200.replace(b"branch=@BR@", b"branch=z9hG4bKstray")
    return dict(
        r100=r100,
        r180=r180,
        r200=r200,
        r486=r486,
        r503=r503,
        ack=ack,
        bye=bye,
        bye_200=bye_200,
        cancel=cancel,
        callee_bye=callee_bye,
        options=options,
        stray=stray,
        invite=invite(1).replace(b"fz-1", b"fz-@N@").replace(b"from1", b"from@N@").replace(b"z9hG4bK-1-1", b"z9hG4bK-@N@-1"),
    )


def seeds():
    m = _seed_call()
    T, U, S = 0, 1, 2  # selectors: trusted caller, untrusted peer, the chosen server
    scripts = [
        (1, [(S, m["r100"]), (S, m["r180"]), (S, m["r200"]), (T, m["ack"]), (T, m["bye"]), (S, m["bye_200"])]),
        (1, [(S, m["r100"]), (S, m["r180"]), (S, m["r200"]), (U, m["ack"]), (U, m["bye"]), (S, m["bye_200"])]),
        (1, [(S, m["r180"]), (T, m["cancel"]), (S, m["r486"])]),
        (1, [(S, m["r503"]), (S, m["r503"])]),
        (1, [(S, m["r200"]), (S, m["callee_bye"]), (T, m["r200"])]),
        (1, [(S, m["r200"]), (S, m["r200"]), (3, m["stray"])]),
        (1, [(S | 8, m["r180"]), (T | 8, m["bye"])]),
        (0, [(T, m["invite"]), (T, m["invite"])]),
        (0, [(T, m["options"]), (U, m["options"])]),
        (0, [(U, m["invite"])]),
        (0, [(T, m["bye"])]),
        (1, [(U, m["cancel"]), (U, m["bye"]), (U, m["ack"])]),
        (1, [(S, m["r200"]), (T, m["ack"]), (T | 16, m["bye"])]),
        (1, [(S, m["r200"]), (U | 32, m["bye"])]),
    ]
    out = []
    for flags, msgs in scripts:
        out.append(bytes([flags]) + SEP.join(bytes([sel]) + d for sel, d in msgs))
    for name, d in m.items():  # each message alone, after a fresh INVITE
        out.append(bytes([1]) + bytes([T if name in ("ack", "bye", "cancel", "options", "invite") else S]) + d)
    return out


def main():
    _common.seed_corpus(sys.argv, seeds)
    args = _common.default_args(sys.argv, max_len=8192, timeout=30, rss_limit_mb=6144, dict=Path(__file__).with_name("sip.dict"))
    atheris.Setup(args, TestOneInput)
    try:
        atheris.Fuzz()
    finally:
        print(f"#TABLES final {check_tables()} {stats}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if os.environ.get("FUZZ_SEEDS_ONLY"):
        for s in seeds():
            TestOneInput(s)
        print(check_tables(), stats)
    else:
        main()
