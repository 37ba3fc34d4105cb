"""Server and client transactions of a stateful proxy (RFC 3261 §16-17, RFC 6026).

A server transaction is the request we received; each attempt to forward it is a client
transaction (a "branch"). Over UDP client transactions retransmit (timers A/E) until a
response; fr_timer bounds the wait for any response, fr_inv_timer the wait for a final one
after a provisional, trying_timeout the wait for the first provisional of an INVITE.

Branches are never forgotten early: a branch we gave up on (abandoned: the destination
looked dead) stays matched until it lingers out, so its late replies are handled:
a late 1xx gets a CANCEL, a late final non-2xx an ACK, and a late 2xx is either relayed
(the call has no final answer yet: it wins, and the current branch is cancelled) or,
when the caller already has its answer, ACKed and BYEd by us so no call is left hanging.
"""

# sip/ owns the timers and the branches; the proxy's modules reach them through here.
from sip.transaction import BRANCH_PREFIX, T1, T2, is_own_branch, new_branch  # noqa: F401

LINGER = 32.0  # 64*T1: how long a finished transaction still absorbs retransmissions

CALLING, PROCEEDING, ACCEPTED, COMPLETED = 0, 1, 2, 3


class ServerTxn:
    __slots__ = (
        "key",
        "method",
        "call_id",
        "req",
        "listener",
        "addr",
        "conn",
        "to_tag",
        "final_code",
        "last_response",
        "branches",
        "order",
        "tried",
        "hops",
        "dset",
        "dispatch",
        "canceled",
        "retrans",
        "interval",
        "template_start",
        "template",
        "tails",
        "record_route",
        "next_hop",
        "created",
        "winner",
        "counted",
        "source",
        "carrier",
    )

    def __init__(self, key, method, call_id, req, listener, addr, conn):
        self.key = key
        self.method = method
        self.call_id = call_id
        self.req = req
        self.listener = listener
        self.addr = addr
        self.conn = conn
        self.to_tag = None
        self.final_code = None
        self.last_response = None
        self.branches = []
        self.order = ()
        self.tried = 0
        self.hops = ()  # the current destination's DNS addresses not tried yet
        self.dset = None
        self.dispatch = False
        self.canceled = False
        self.retrans = None
        self.interval = T1
        self.template_start = None
        self.template = None
        self.tails = {}
        self.record_route = False
        self.next_hop = None
        self.created = 0.0
        self.winner = None
        self.counted = False
        self.source = None  # the untrusted address this counts against (cap per source)
        self.carrier = None  # a dispatched request's carrier: the source rule it matched, or "other"


class ClientTxn:
    __slots__ = (
        "branch",
        "server",
        "dest",
        "proto",
        "addr",
        "data",
        "via_line",
        "is_invite",
        "state",
        "t_retrans",
        "t_trying",
        "t_fr",
        "interval",
        "abandoned",
        "cancel_pending",
        "cancel_data",
        "t_cancel",
        "ack_data",
        "sent_at",
        "listener",
        "trying_rearms",
        "code",
        "ended",
        "why",
    )

    def __init__(self, branch, server, dest, proto, addr, data, via_line, listener):
        self.branch = branch
        self.server = server
        self.dest = dest
        self.proto = proto
        self.addr = addr
        self.data = data
        self.via_line = via_line
        self.listener = listener
        self.is_invite = server.method == b"INVITE"
        self.state = CALLING
        self.t_retrans = None
        self.t_trying = None
        self.t_fr = None
        self.interval = T1
        self.abandoned = False
        self.cancel_pending = False
        self.cancel_data = None
        self.t_cancel = None
        self.ack_data = None
        self.sent_at = 0.0
        self.trying_rearms = 0
        self.code = None  # the final code it answered (call records)
        self.ended = None  # loop time of that answer, or of giving up on it
        self.why = None  # why we gave up on it without a final answer

    def stop_timers(self):
        for t in (self.t_retrans, self.t_trying, self.t_fr):
            if t is not None:
                t.cancel()
        self.t_retrans = self.t_trying = self.t_fr = None


def _route_lines(req):
    return [req.lines[i] for i, n in enumerate(req.names) if n == b"route"]


def build_cancel(ct, ua=b"lbpanel"):
    """CANCEL for a branch (RFC 3261 §9.1): same R-URI, Via branch, Call-ID, From, To, CSeq number, Route."""
    st = ct.server
    req = st.template
    num, _ = req.cseq
    lines = [
        b"CANCEL " + req.uri + b" SIP/2.0",
        ct.via_line,
        b"Max-Forwards: 70",
        b"From: " + req.get(b"from"),
        b"To: " + req.get(b"to"),
        b"Call-ID: " + req.call_id,
        b"CSeq: %d CANCEL" % num,
        *_route_lines(req),
        b"User-Agent: " + ua,
        b"Content-Length: 0",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def build_ack(ct, resp, ua=b"lbpanel"):
    """Hop-by-hop ACK for a non-2xx final response (RFC 3261 §17.1.1.3): To from the response."""
    req = ct.server.template
    num, _ = req.cseq
    lines = [
        b"ACK " + req.uri + b" SIP/2.0",
        ct.via_line,
        b"Max-Forwards: 70",
        b"From: " + req.get(b"from"),
        b"To: " + resp.get(b"to"),
        b"Call-ID: " + req.call_id,
        b"CSeq: %d ACK" % num,
        *_route_lines(req),
        b"User-Agent: " + ua,
        b"Content-Length: 0",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def build_dialog_request(method, resp, via_line, cseq_num, routes, ua=b"lbpanel"):
    """ACK or BYE inside the dialog a late 2xx created (we act as the caller's side)."""
    target = resp.uri_of(b"contact") or b""
    lines = [
        method + b" " + target + b" SIP/2.0",
        via_line,
        b"Max-Forwards: 70",
        b"From: " + resp.get(b"from"),
        b"To: " + resp.get(b"to"),
        b"Call-ID: " + resp.call_id,
        b"CSeq: %d " % cseq_num + method,
        *[b"Route: " + r for r in routes],
        b"User-Agent: " + ua,
        b"Content-Length: 0",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"
