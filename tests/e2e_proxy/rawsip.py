"""Hand-made SIP over a raw socket, for what SIPp cannot do on purpose: exact retransmissions and
malformed messages. Deliberately independent of sip/ (the code under test)."""

import re
import socket
import time
import uuid

_HEADER = re.compile(rb"^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$")
_COMPACT = {b"v": b"via", b"i": b"call-id", b"f": b"from", b"t": b"to", b"m": b"contact", b"l": b"content-length"}


class Response:
    def __init__(self, data):
        self.raw = data
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        parts = head[0].split(b" ", 2)
        self.code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.reason = parts[2].decode(errors="replace") if len(parts) > 2 else ""
        self.headers = {}
        for line in head[1:]:
            match = _HEADER.match(line)
            if match:
                name = match.group(1).lower()
                name = _COMPACT.get(name, name)
                self.headers.setdefault(name.decode(), []).append(match.group(2).decode(errors="replace"))

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def __repr__(self):
        return f"<{self.code} {self.reason}>"


def is_response(data):
    return data.startswith(b"SIP/2.0 ")


class UdpPeer:
    """A UDP socket on 127.0.0.1 that sends bytes and collects SIP responses."""

    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data, port):
        self.sock.sendto(data, ("127.0.0.1", port))

    def recv(self, timeout):
        """Next datagram within `timeout`, or None."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return None

    def wait_response(self, predicate, timeout):
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            data = self.recv(left)
            if data is not None and is_response(data):
                response = Response(data)
                if predicate(response):
                    return response
        return None

    def options(self, target_port, timeout=1.0):
        msg = request("OPTIONS", f"sip:127.0.0.1:{target_port}", self.port, target_port)
        self.send(msg.encode(), target_port)
        return self.wait_response(lambda r: True, timeout)


def request(method, ruri, lport, rport, *, call_id=None, branch=None, cseq=1, extra="", body="", from_tag="rawtag"):
    call_id = call_id or uuid.uuid4().hex
    branch = branch or "z9hG4bK" + uuid.uuid4().hex
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
        f"From: <sip:raw@127.0.0.1:{lport}>;tag={from_tag}\r\n"
        f"To: <sip:{ruri.split(':', 1)[1]}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:raw@127.0.0.1:{lport}>\r\n"
        f"Max-Forwards: 70\r\n"
        f"{extra}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )


def hang_up(caller, invite, ok, proxy_port, timeout=3.0):
    """ACK the 200 `ok` for our raw `invite`, then BYE along its Record-Route; the 200 for the BYE,
    or None. A call left unACKed keeps its SIPp server waiting for the ACK until its graceful stop
    gives up (10 s a server)."""
    routes = ", ".join(reversed(ok.headers.get("record-route", [])))
    contact = ok.header("contact").strip("<>").split(">")[0]
    dialog = dict(call_id=_call_id(invite), from_tag="rawtag", extra=f"Route: {routes}\r\n")
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        caller.send(
            _with_to(request(method, contact, caller.port, proxy_port, cseq=cseq, **dialog), ok.header("to")).encode(), proxy_port
        )
    return caller.wait_response(lambda r: r.code == 200 and "BYE" in (r.header("cseq") or ""), timeout)


def _call_id(invite):
    for line in invite.decode().split("\r\n"):
        if line.startswith("Call-ID:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Call-ID in our own INVITE")


def _with_to(message, to):
    lines = message.split("\r\n")
    return "\r\n".join(f"To: {to}" if line.startswith("To:") else line for line in lines)
