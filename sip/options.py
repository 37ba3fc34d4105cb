"""Health-probe requests (OPTIONS, or the configured ds_ping_method) and their replies.

Only what a prober needs: build one out-of-dialog request for a destination URI,
and read a reply's status, reason and the Via branch / Call-ID / CSeq that match
it to the request (parsed by sip/message.py, as the proxy parses it). Stdlib only; the prober (probes/) owns sockets and timing.
"""

import secrets
from dataclasses import dataclass

from sip.errors import SipSyntaxError, UnsafeHeaderValue
from sip.framing import MAX_MESSAGE
from sip.headers import check_header_value, is_token
from sip.message import parse_message
from sip.uri import parse_wire_uri

MAX_FORWARDS = 70
MAX_REPLY = MAX_MESSAGE


def new_call_id(host="lbpanel"):
    return f"{secrets.token_hex(12)}@{host}"


def new_tag():
    return secrets.token_hex(6)


def build_request(
    target_uri,
    *,
    from_uri,
    transport,
    local_host=None,
    local_port=None,
    branch,
    call_id,
    from_tag,
    cseq=1,
    method="OPTIONS",
    user_agent="lbpanel",
    via=None,
):
    """The request as bytes. `target_uri` is the destination URI as configured (it is
    also the To URI, as Kamailio's dispatcher sends it); `local_host`/`local_port` go
    into Via, with ;rport so a server behind NAT answers the port we sent from. `via`: the
    whole Via value instead (the proxy's listener names itself, a worker its own port).

    Nothing that could break out of its header is written: a method that is not an RFC 3261
    token or a URI with spaces or control characters raises ValueError, any other value with
    CR, LF or NUL raises UnsafeHeaderValue (a ValueError too)."""
    method = method.upper()
    if not is_token(method):
        raise ValueError(f"ping method must be a SIP method name (an RFC 3261 token), got {method!r}")
    if transport.lower() not in ("udp", "tcp", "tls"):
        raise ValueError(f"transport must be udp, tcp or tls, got {transport!r}")
    for header, uri in (("request URI and To", target_uri), ("From", from_uri)):
        try:
            parse_wire_uri(uri)
        except SipSyntaxError as exc:
            raise UnsafeHeaderValue(header, uri, f"is not a SIP URI that can be sent: {exc}") from None
    if via is None:
        sent_by = f"[{local_host}]" if ":" in local_host else local_host
        via = f"SIP/2.0/{transport.upper()} {sent_by}:{local_port};branch={branch};rport"
    for header, value in (
        ("Via", via),
        ("Via branch", branch),
        ("Call-ID", call_id),
        ("From tag", from_tag),
        ("User-Agent", user_agent),
    ):
        check_header_value(header, str(value).encode("utf-8"))
    lines = (
        f"{method} {target_uri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        f"Max-Forwards: {MAX_FORWARDS}\r\n"
        f"From: <{from_uri}>;tag={from_tag}\r\n"
        f"To: <{target_uri}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"User-Agent: {user_agent}\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    )
    return lines.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    reason: str
    branch: str | None
    call_id: str | None
    cseq: int | None
    cseq_method: str | None

    @property
    def is_final(self):
        return self.code >= 200

    @property
    def status(self):
        """'503 Service Unavailable' — how a reply is named in logs and state events."""
        return f"{self.code} {self.reason}".strip()


def parse_reply(data):
    """Parse a SIP response with the proxy's parser (sip/message.py) and keep what matches
    it to its request.

    Raises SipSyntaxError naming the header at fault; a request (not a response)
    is an error too, since a prober's socket should only receive replies.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if len(data) > MAX_REPLY:
        raise SipSyntaxError(f"reply of {len(data)} bytes is too large")
    msg = parse_message(data)
    if msg.code is None:
        raise SipSyntaxError(f"not a SIP status line: {msg.start_line()[:60]!r}")
    if msg.code > 699:
        raise SipSyntaxError(f"status code must be 100-699, got {msg.code}")
    call_id = msg.call_id.decode("utf-8", "replace")
    branch = msg.via.branch
    if not branch:
        raise SipSyntaxError("missing or without branch", header="Via")
    cseq = cseq_method = None
    if msg.get(b"cseq") is not None:
        cseq, method = msg.cseq
        cseq_method = method.decode("ascii", "replace").upper()
    return Reply(
        msg.code,
        msg.reason.decode("utf-8", "replace").strip(),
        branch.decode("ascii", "replace"),
        call_id,
        cseq,
        cseq_method,
    )
