"""Health-probe requests (OPTIONS, or the configured ds_ping_method) and their replies.

Only what a prober needs: build one out-of-dialog request for a destination URI,
and read a reply's status, reason and the Via branch / Call-ID / CSeq that match
it to the request. Stdlib only; the prober (probes/) owns sockets and timing.
"""

import secrets
from dataclasses import dataclass

from sip.errors import SipSyntaxError, UnsafeHeaderValue
from sip.headers import check_header_value, is_token
from sip.uri import parse_wire_uri

MAX_FORWARDS = 70
MAX_REPLY = 65535

# Compact header forms (RFC 3261 §7.3.3) a reply may use.
_COMPACT = {b"v": b"via", b"i": b"call-id", b"l": b"content-length"}


def new_call_id(host="lbpanel"):
    return f"{secrets.token_hex(12)}@{host}"


def new_tag():
    return secrets.token_hex(6)


def build_request(
    target_uri,
    *,
    from_uri,
    transport,
    local_host,
    local_port,
    branch,
    call_id,
    from_tag,
    cseq=1,
    method="OPTIONS",
    user_agent="lbpanel",
):
    """The request as bytes. `target_uri` is the destination URI as configured (it is
    also the To URI, as Kamailio's dispatcher sends it); `local_host`/`local_port` go
    into Via, with ;rport so a server behind NAT answers the port we sent from.

    Nothing that could break out of its header is written: a method that is not an RFC 3261
    token or a URI with spaces or control characters raises ValueError, any other value with
    CR, LF or NUL raises UnsafeHeaderValue (a ValueError too)."""
    method = method.upper()
    if not is_token(method):
        raise ValueError(f"ping method must be a SIP method name (an RFC 3261 token), got {method!r}")
    if transport.lower() not in ("udp", "tcp"):
        raise ValueError(f"transport must be udp or tcp, got {transport!r}")
    for header, uri in (("request URI and To", target_uri), ("From", from_uri)):
        try:
            parse_wire_uri(uri)
        except SipSyntaxError as exc:
            raise UnsafeHeaderValue(header, uri, f"is not a SIP URI that can be sent: {exc}") from None
    for header, value in (("Via", local_host), ("Via branch", branch), ("Call-ID", call_id), ("From tag", from_tag), ("User-Agent", user_agent)):
        check_header_value(header, str(value).encode("utf-8"))
    sent_by = f"[{local_host}]" if ":" in local_host else local_host
    lines = (
        f"{method} {target_uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {sent_by}:{local_port};branch={branch};rport\r\n"
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
    content_length: int = 0

    @property
    def is_final(self):
        return self.code >= 200

    @property
    def status(self):
        """'503 Service Unavailable' — how a reply is named in logs and state events."""
        return f"{self.code} {self.reason}".strip()


def parse_reply(data):
    """Parse a SIP response's status line and the headers that match it.

    Raises SipSyntaxError naming the header at fault; a request (not a response)
    is an error too, since a prober's socket should only receive replies.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if len(data) > MAX_REPLY:
        raise SipSyntaxError(f"reply of {len(data)} bytes is too large")
    head_end = data.find(b"\r\n\r\n")
    head = data if head_end < 0 else data[:head_end]
    lines = head.split(b"\r\n")
    code, reason = _status_line(lines[0])
    branch = call_id = cseq = cseq_method = None
    content_length = 0
    for raw in _unfold(lines[1:]):
        name, colon, value = raw.partition(b":")
        if not colon:
            raise SipSyntaxError(f"header line without a colon: {raw[:40]!r}")
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        value = value.strip()
        if name == b"via" and branch is None:
            branch = _via_branch(value)
        elif name == b"call-id":
            call_id = value.decode("utf-8", "replace")
        elif name == b"cseq":
            cseq, cseq_method = _cseq(value)
        elif name == b"content-length":
            if not value.isdigit():
                raise SipSyntaxError(f"not a number: {value[:20]!r}", header="Content-Length")
            content_length = int(value)
    if call_id is None:
        raise SipSyntaxError("missing", header="Call-ID")
    if branch is None:
        raise SipSyntaxError("missing or without branch", header="Via")
    return Reply(code, reason, branch, call_id, cseq, cseq_method, content_length)


def _status_line(line):
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith(b"SIP/"):
        raise SipSyntaxError(f"not a SIP status line: {line[:60]!r}")
    if parts[0].upper() != b"SIP/2.0":
        raise SipSyntaxError(f"unsupported version {parts[0][:20]!r}")
    if not (len(parts[1]) == 3 and parts[1].isdigit() and 100 <= int(parts[1]) <= 699):
        raise SipSyntaxError(f"status code must be 100-699, got {parts[1][:10]!r}")
    reason = parts[2].decode("utf-8", "replace").strip() if len(parts) > 2 else ""
    return int(parts[1]), reason


def _unfold(lines):
    """Header continuation lines (leading whitespace) belong to the header above."""
    out = []
    for line in lines:
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += b" " + line.strip()
        else:
            out.append(line)
    return out


def _via_branch(value):
    # Only the top Via is ours; a header may carry several, comma separated.
    top = value.split(b",", 1)[0]
    for param in top.split(b";")[1:]:
        key, _, val = param.partition(b"=")
        if key.strip().lower() == b"branch":
            val = val.strip()
            if not val:
                raise SipSyntaxError("empty branch", header="Via")
            return val.decode("ascii", "replace")
    return None


def _cseq(value):
    number, _, method = value.partition(b" ")
    if not number.isdigit():
        raise SipSyntaxError(f"sequence number is not a number: {value[:30]!r}", header="CSeq")
    method = method.strip()
    if not method:
        raise SipSyntaxError("no method", header="CSeq")
    return int(number), method.decode("ascii", "replace").upper()


def stream_reply_length(buf):
    """For a TCP stream: the byte length of the first complete message in `buf`, or None
    if more bytes are needed. Raises SipSyntaxError when the headers never end."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_REPLY:
            raise SipSyntaxError(f"no end of headers within {MAX_REPLY} bytes")
        return None
    length = 0
    for raw in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = raw.partition(b":")
        if _COMPACT.get(name.strip().lower(), name.strip().lower()) == b"content-length":
            value = value.strip()
            if not value.isdigit():
                raise SipSyntaxError(f"not a number: {value[:20]!r}", header="Content-Length")
            length = int(value)
    total = end + 4 + length
    return total if len(buf) >= total else None
