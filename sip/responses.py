"""Build responses to a request (RFC 3261 §8.2.6): copy Via, From, To, Call-ID, CSeq."""

from sip.errors import SipSyntaxError
from sip.headers import Via, check_header_value, param

_COPIED = (b"via", b"from", b"call-id", b"cseq")
_SAFE_SERVERS = set()  # Server values already checked: a proxy sends the same one every time


def response_bytes(req, code, reason, *, to_tag=None, extra=(), server=None):
    """`req` is a parsed SipMessage; `to_tag` is added to To unless it has one
    (never on 100, RFC 3261 §8.2.6.2). `extra`: full header lines (bytes).
    A `server` that could break out of its header raises UnsafeHeaderValue."""
    out = [b"SIP/2.0 %d " % code + reason]
    lines = req.lines
    for i, name in enumerate(req.names):
        if name in _COPIED:
            out.append(lines[i])
        elif name == b"to":
            line = lines[i]
            if to_tag and code != 100 and _untagged(req):
                line = line + b";tag=" + to_tag
            out.append(line)
    out.extend(extra)
    if server:
        if server not in _SAFE_SERVERS:
            check_header_value("Server", server)
            if len(_SAFE_SERVERS) < 16:
                _SAFE_SERVERS.add(server)
        out.append(b"Server: " + server)
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"


def _untagged(req):
    """Whether a tag may be added to the request's To: not when it has one, nor when it cannot be
    read (the 400 for that very To goes back with it as it came)."""
    try:
        return req.to_tag is None
    except SipSyntaxError:
        return False


def add_received(via, source_ip, source_port):
    """RFC 3261 §18.2.1 + RFC 3581: the top Via value with received/rport filled in,
    or None when it needs no change."""
    fixed = received_via(via, source_ip, source_port)
    return None if fixed is None else fixed.raw


def received_via(via, source_ip, source_port):
    """add_received as a parsed Via (its value in .raw): the proxy reads the new one at once, and
    parsing it again cost a fifth of a request's header work."""
    params = via.params
    rport = param(params, b"rport")
    needs_received = via.host != source_ip
    if not needs_received and rport != b"":
        return None
    out = []
    for part in params.split(b";"):
        if not part.strip():
            continue
        key = part.split(b"=", 1)[0].strip().lower()
        if key == b"received":
            continue
        if key == b"rport":
            out.append(b"rport=%d" % source_port)
            continue
        out.append(part.strip())
    if needs_received or rport == b"":
        out.append(b"received=" + source_ip.encode())
    head = via.raw
    semi = head.find(b";")
    base = head[:semi] if semi >= 0 else head
    params = b";" + b";".join(out)
    return Via(via.transport, via.host, via.port, params, base.rstrip() + params)
