"""Reproduce every finding of the fuzz run against the code as it is, without atheris.

Run: .venv/bin/python fuzz/findings/repro.py [NAME...]

Each case prints what happened (the exception and its innermost frame, what was logged, what was
sent, or the time taken). The inputs are the files beside this one (*.bin: one datagram, or for
the framer one stream); the cases that need a call in progress build it first, on the same
in-process proxy as fuzz/fuzz_proxy.py (fake sockets, servers 127.0.0.1:5081-5083 trusted,
caller 127.0.0.10 trusted, peer 127.0.0.20 untrusted).
"""

import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import atheris


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


atheris.instrument_imports = lambda *a, **k: _Null()  # plain Python: real timings

import fuzz_proxy as P

from sip.framing import StreamFramer
from sip.message import parse_message
from sip.uri import parse_uri

core, lis, wire, grab = P.core, P.lis, P.wire, P.grab


def where(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in tb[-3:]]
    return f"{type(exc).__name__}: {str(exc)[:90]}  [{' <- '.join(reversed(frames))}]"


def load(name):
    return (HERE / name).read_bytes()


def call(fn, *args):
    try:
        fn(*args)
        return "no exception"
    except Exception as exc:  # noqa: BLE001
        return where(exc)


def deliver(data, src, conn=None):
    """on_message as the UDP listener calls it; returns (escaped exception, logged lines, sends, seconds)."""
    grab.records.clear()
    t = time.perf_counter()
    escaped = None
    try:
        core.on_message(data, lis, src, conn)
    except Exception as exc:  # noqa: BLE001
        escaped = where(exc)
    spent = time.perf_counter() - t
    logged = []
    for r in grab.records:
        line = f"{r.levelname} {r.getMessage()[:80]}"
        if r.exc_info:
            line += "  -> " + where(r.exc_info[1])
        logged.append(line)
    grab.records.clear()
    return escaped, logged, wire.take(), spent


def show(title, result):
    escaped, logged, sent, spent = result
    print(f"  {title}: escaped={escaped}")
    for line in logged:
        print(f"    logged {line}")
    print(f"    sent to {[a for a, _ in sent]}  ({spent * 1000:.1f} ms)")


def fresh_call(n):
    """A valid INVITE of call n from the trusted caller; returns (server address, forwarded INVITE)."""
    _, _, sent, _ = deliver(P.invite(n), P.CALLER)
    for addr, data in sent:
        if addr in P.SERVER_ADDRS:
            return addr, parse_message(data)
    raise AssertionError(f"INVITE {n} not forwarded: {sent}")


# -- cases ---------------------------------------------------------------------


def parser_content_length_digits():
    """parse_message: Content-Length of more than 4300 digits -> ValueError (int() digit limit)."""
    data = load("parser-content-length-digits.bin")
    print("  parse_message:", call(parse_message, data))
    show("on_message from the untrusted peer", deliver(data, P.PEER))


def parser_via_port_digits():
    """Via sent-by port of more than 4300 digits -> ValueError out of msg.via (found by reading, not by the fuzzer)."""
    data = load("parser-via-port-digits.bin")
    msg = parse_message(data)
    print("  msg.via:", call(lambda: msg.via))
    show("on_message from the untrusted peer", deliver(data, P.PEER))


def uri_superscript_port():
    """parse_uri: a port of Unicode digits ('²' is str.isdigit() but not int()) -> ValueError."""
    print("  parse_uri('sip:h:\\u00b2'):", call(parse_uri, "sip:h:\u00b2"))
    print("  parse_uri(b'sip:h:\\xc2\\xb2'):", call(parse_uri, b"sip:h:\xc2\xb2"))
    show(
        "on_message, untrusted in-dialog request with Route <sip:h:\\xb2>",
        deliver(load("proxy-route-superscript-port.bin"), P.PEER),
    )


def split_commas_quadratic():
    """A 64 KB Via of '<' and commas: split_commas rejoins the pieces one by one (quadratic)."""
    data = load("parser-via-lt-commas.bin")
    msg = parse_message(data)
    t = time.perf_counter()
    print("  msg.via:", call(lambda: msg.via), f"({(time.perf_counter() - t) * 1000:.0f} ms)")
    show("on_message from the untrusted peer", deliver(data, P.PEER))


def folding_slow():
    """16,000 folded continuation lines: _headers_slow re-concatenates the growing header each time."""
    data = load("parser-folding.bin")
    t = time.perf_counter()
    call(parse_message, data)
    print(f"  parse_message {len(data)} bytes: {(time.perf_counter() - t) * 1000:.0f} ms")


def roundtrip_no_headers():
    """A message with no header line: to_bytes() writes an extra CRLF, which parses back as body."""
    data = load("parser-roundtrip-no-headers.bin")
    m = parse_message(data)
    again = parse_message(m.to_bytes())
    print(f"  body {m.body!r} -> after to_bytes and parse {again.body!r}")


def malformed_400_raises():
    """A request check() rejects (no Call-ID) whose To is broken: the 400 reads req.to_tag, which raises."""
    show("on_message (check() fails)", deliver(load("proxy-malformed-to-check.bin"), P.PEER))
    show("on_message (parse fails, _salvage)", deliver(load("proxy-malformed-to-salvage.bin"), P.PEER))


def orphan_bad_ruri():
    """Trusted OPTIONS with an unparseable R-URI: SipSyntaxError after new_server(); the transaction stays."""
    before = len(core.servers)
    show("on_message from the trusted caller", deliver(load("proxy-orphan-bad-ruri.bin"), P.CALLER))
    st = core.servers.get(b"z9hG4bKorphan1 OPTIONS")
    print(
        f"  servers {before} -> {len(core.servers)}; st.final_code={st and st.final_code} "
        f"branches={st and len(st.branches)} in server_linger={any(x is st for _, x in core.server_linger.items)}"
    )


def orphan_untrusted_signed_route():
    """Untrusted, signed in-dialog BYE whose second Route entry is broken: the transaction and its
    count against max_transactions_per_source stay for good (found by reading, after the fuzzer's
    trusted variant)."""
    n = 900001
    srv, _ = fresh_call(n)
    data = load("proxy-orphan-signed-route.bin").replace(b"@N@", b"%d" % n).replace(b"@SIG@", P.sig(n))
    held = core.by_source.get(P.PEER[0], 0)
    show("on_message from the untrusted peer", deliver(data, P.PEER))
    st = core.servers.get(b"z9hG4bKorphan2 BYE")
    print(
        f"  st.final_code={st and st.final_code} branches={st and len(st.branches)} "
        f"by_source[{P.PEER[0]}] {held} -> {core.by_source.get(P.PEER[0], 0)}"
    )


def build_ack_no_to():
    """A non-2xx final response without To: build_ack concatenates None; the INVITE never ends."""
    n = 900002
    srv, fwd = fresh_call(n)
    pending = core.pending_invites
    data = load("proxy-486-no-to.bin").replace(b"@BR@", fwd.via.branch)
    show("on_message from the server", deliver(data, srv))
    st = core.servers.get(b"z9hG4bK-%d-1 INVITE" % n)
    print(
        f"  st.final_code={st.final_code} branch state={st.branches[0].state} abandoned={st.branches[0].abandoned} "
        f"t_fr={st.branches[0].t_fr}; pending_invites before the 486 {pending}, after {core.pending_invites}"
    )


def late_2xx_no_from():
    """A late 2xx (a losing branch) without From: build_dialog_request concatenates None."""
    n = 900003
    srv1, fwd1 = fresh_call(n)
    r503 = P.response_bytes(fwd1, 503, b"Service Unavailable", to_tag=b"a")
    _, _, sent, _ = deliver(r503, srv1)
    second = [(a, parse_message(d)) for a, d in sent if a in P.SERVER_ADDRS and d.startswith(b"INVITE")]
    srv2, fwd2 = second[0]
    deliver(P.response_bytes(fwd2, 200, b"OK", to_tag=b"b", extra=[b"Contact: <sip:127.0.0.1:%d>" % srv2[1]]), srv2)
    data = load("proxy-late-200-no-from.bin").replace(b"@BR@", fwd1.via.branch).replace(b"@N@", b"%d" % n)
    show("on_message: the first server's late 200, no From", deliver(data, srv1))


def stray_nul_via():
    """A stray response (top Via ours) whose next Via host has a NUL: literal() -> inet_aton ValueError."""
    show("on_message from the untrusted peer", deliver(load("proxy-stray-nul-via.bin"), P.PEER))


def branch_reuse_reflects():
    """A request from the untrusted peer with the branch of the trusted caller's transaction: the
    proxy sends that transaction's last response to the caller (matching ignores the sent-by)."""
    data = load("proxy-branch-reuse.bin")
    show("trusted caller's OPTIONS", deliver(data, P.CALLER))
    show("the same branch from the untrusted peer", deliver(data.replace(b"sip:127.0.0.1:5060", b"sip:x@127.0.0.1"), P.PEER))


def framer_content_length_digits():
    """StreamFramer.feed: Content-Length of more than 4300 digits -> ValueError (TcpConnection catches only SipSyntaxError)."""
    print("  feed:", call(StreamFramer().feed, load("framing-content-length-digits.bin")))


def framer_split_ping():
    """A double-CRLF keepalive (RFC 5626) read in pieces is not counted: no pong."""
    data = load("framing-ping-split.bin")
    whole, cut = StreamFramer(), StreamFramer()
    whole.feed(data)
    for i in range(len(data)):
        cut.feed(data[i : i + 1])
    print(f"  pings: whole {whole.pings}, one byte per read {cut.pings}")


def untrusted_signed_relay():
    """An untrusted peer holding a dialog's signature (Call-ID + From tag) makes us relay to any R-URI
    (found by reading; the fuzzer did not produce it)."""
    n = 900004
    srv, _ = fresh_call(n)
    ctx = P.Ctx(n)
    ctx.srv = srv
    bye = ctx.fill(P._seed_call()["bye"]).replace(b"BYE sip:127.0.0.1:%d" % srv[1], b"BYE sip:127.0.0.99:5099")
    show("signed BYE from the untrusted peer, R-URI sip:127.0.0.99:5099", deliver(bye, P.PEER))


CASES = [
    parser_content_length_digits,
    parser_via_port_digits,
    uri_superscript_port,
    split_commas_quadratic,
    folding_slow,
    roundtrip_no_headers,
    malformed_400_raises,
    orphan_bad_ruri,
    orphan_untrusted_signed_route,
    build_ack_no_to,
    late_2xx_no_from,
    stray_nul_via,
    branch_reuse_reflects,
    framer_content_length_digits,
    framer_split_ping,
    untrusted_signed_relay,
]


def main(names):
    for case in CASES:
        if names and case.__name__ not in names:
            continue
        print(f"{case.__name__}: {case.__doc__.splitlines()[0]}")
        try:
            case()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
    P.pump()


if __name__ == "__main__":
    main(sys.argv[1:])
