"""Cut a TCP byte stream into SIP messages (RFC 3261 §18.3).

Several messages may come in one read and one message over several reads; the
body length comes from Content-Length. CRLFs between messages are keepalives
(RFC 5626 §4.4.1): a double CRLF "ping" is counted so the owner can answer a
single CRLF "pong".
"""

import re

from sip.errors import SipSyntaxError

MAX_MESSAGE = 65535


class StreamFramer:
    __slots__ = ("buf", "pings", "max_size", "scanned", "total", "crlf")

    def __init__(self, max_size=MAX_MESSAGE):
        self.buf = bytearray()
        self.pings = 0
        self.max_size = max_size
        # where the search for the end of headers resumes: a peer trickling one byte per
        # segment must not make every read rescan the whole buffer (quadratic CPU)
        self.scanned = 0
        self.total = 0  # size of the message whose body is still arriving
        # the end of a CR/LF run that ended the last read (at most 3 bytes, after its last
        # ping): a double-CRLF ping read in pieces is still one
        self.crlf = b""

    def feed(self, data):
        """Add bytes; return the list of complete messages now available.

        Raises SipSyntaxError when the stream cannot be framed any more (the
        connection should then be closed: we no longer know where messages start).
        """
        buf = self.buf
        buf += data
        carry = self.crlf
        if carry:  # the last read ended in a CR/LF run: does this one go on with it?
            self.crlf = b""
            if buf[:1] not in (b"\r", b"\n"):
                carry = b""
        out = []
        while buf:
            skip = 0
            n = len(buf)
            while skip < n and buf[skip] in (0x0D, 0x0A):
                skip += 1
            if skip:
                run = carry + bytes(buf[:skip])
                carry = b""
                pings = run.count(b"\r\n\r\n")
                if pings:
                    self.pings += pings
                    run = run[run.rfind(b"\r\n\r\n") + 4 :]
                if skip == n:
                    self.crlf = run[-3:]  # the run may go on in the next read
                del buf[:skip]
                self.scanned = 0
                continue
            total = self.total
            if not total:
                end = buf.find(b"\r\n\r\n", self.scanned)
                if end < 0:
                    if n > self.max_size:
                        raise SipSyntaxError(f"no end of headers within {self.max_size} bytes", offset=n)
                    self.scanned = n - 3 if n > 3 else 0
                    break
                total = end + 4 + _content_length(buf, end)
                if total > self.max_size:
                    raise SipSyntaxError(f"message of {total} bytes is too large", header="Content-Length")
            if n < total:
                self.total = total  # the headers are parsed once, however slowly the body comes
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
            self.scanned = self.total = 0
        return out


# Compiled once: the header name (full or compact "l") at a line start, then the value.
_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


def _content_length(buf, end):
    m = _CONTENT_LENGTH.search(buf, 0, end)
    if m is None:
        return 0
    value = bytes(m.group(1)).strip()
    # at most 10 digits (as parse_message): int() refuses more than 4300 with a ValueError
    if len(value) > 10 or not value.isdigit():
        raise SipSyntaxError(f"Content-Length is not a number of at most 10 digits: {value[:20]!r}", header="Content-Length")
    return int(value)
