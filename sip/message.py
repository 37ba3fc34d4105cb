"""SIP messages (RFC 3261 §7): parse what routing needs, keep the rest as bytes.

A message is its start line, a list of header lines (raw bytes, kept verbatim
unless edited) with their canonical names and values, and the body. Fields the
proxy routes on are parsed on first use and cached. Serializing joins the lines
back, so a forwarded message differs from the received one only where we edited it.
"""

from sip.errors import SipSyntaxError
from sip.headers import _NAME_CACHE, COMMA_LISTS, canonical_name, name_addr, parse_via, split_commas, tag_of

_SIP20 = b"SIP/2.0"
_CRLF = b"\r\n"


class SipMessage:
    __slots__ = (
        "method",
        "uri",
        "code",
        "reason",
        "names",
        "lines",
        "values",
        "body",
        "_via",
        "_cseq",
        "_call_id",
        "_to_tag",
        "_from_tag",
    )

    def __init__(self, method, uri, code, reason, names, lines, values, body):
        self.method = method  # bytes for requests, None for responses
        self.uri = uri  # request URI bytes
        self.code = code  # int for responses
        self.reason = reason
        self.names = names
        self.lines = lines
        self.values = values
        self.body = body
        self._via = None
        self._cseq = None
        self._call_id = None
        self._to_tag = False
        self._from_tag = False

    # -- reading -------------------------------------------------------------

    def find(self, name):
        try:
            return self.names.index(name)
        except ValueError:
            return -1

    def get(self, name):
        """First value of a header (the whole line's value), or None."""
        try:
            return self.values[self.names.index(name)]
        except ValueError:
            return None

    def get_all(self, name):
        """Every value of a header, comma lists split, in order."""
        out = []
        split = name in COMMA_LISTS
        for i, n in enumerate(self.names):
            if n == name:
                if split:
                    out.extend(split_commas(self.values[i], name.decode()))
                else:
                    out.append(self.values[i])
        return out

    def first_of_list(self, name):
        """First element of a comma-list header (Via, Route...), or None (absent, or only commas)."""
        v = self.get(name)
        if v is None:
            return None
        if b"," in v:
            parts = split_commas(v, name.decode())
            return parts[0] if parts else None  # "Via: , ," has no element
        return v

    @property
    def via(self):
        """The top Via, parsed."""
        if self._via is None:
            top = self.first_of_list(b"via")
            if top is None:
                raise SipSyntaxError("missing Via", header="Via")
            self._via = parse_via(top)
        return self._via

    @property
    def call_id(self):
        if self._call_id is None:
            v = self.get(b"call-id")
            if not v:
                raise SipSyntaxError("missing Call-ID", header="Call-ID")
            self._call_id = v
        return self._call_id

    @property
    def cseq(self):
        """(number, method bytes)."""
        if self._cseq is None:
            v = self.get(b"cseq")
            if v is None:
                raise SipSyntaxError("missing CSeq", header="CSeq")
            num, _, method = v.partition(b" ")
            method = method.strip()
            if not num.isdigit() or len(num) > 10 or not method:
                raise SipSyntaxError(f"CSeq must be 'number METHOD', got {v[:40]!r}", header="CSeq")
            self._cseq = (int(num), method)
        return self._cseq

    @property
    def from_tag(self):
        if self._from_tag is False:  # read 6 times per call on the way through: parse it once
            v = self.get(b"from")
            if v is None:
                raise SipSyntaxError("missing From", header="From")
            self._from_tag = tag_of(v, "From")
        return self._from_tag

    @property
    def to_tag(self):
        if self._to_tag is False:
            v = self.get(b"to")
            if v is None:
                raise SipSyntaxError("missing To", header="To")
            self._to_tag = tag_of(v, "To")
        return self._to_tag

    def uri_of(self, name):
        """The address (URI bytes) of a From/To/Contact style header, or None."""
        v = self.get(name)
        if v is None:
            return None
        return name_addr(v, name.decode())[0]

    @property
    def max_forwards(self):
        """int, or None when the header is absent."""
        v = self.get(b"max-forwards")
        if v is None:
            return None
        if not v.isdigit() or len(v) > 3:
            raise SipSyntaxError(f"Max-Forwards must be 0-255, got {v[:20]!r}", header="Max-Forwards")
        return int(v)

    def check(self):
        """The sanity checks of the seed's sanity_check(): raise SipSyntaxError on the first problem."""
        self.via
        self.call_id
        num, method = self.cseq
        if self.get(b"from") is None:
            raise SipSyntaxError("missing From", header="From")
        if self.get(b"to") is None:
            raise SipSyntaxError("missing To", header="To")
        self.from_tag
        self.to_tag
        if self.method is not None:
            self.max_forwards
            if method != self.method:
                raise SipSyntaxError(f"CSeq method {method!r} differs from {self.method!r}", header="CSeq")

    # -- editing -------------------------------------------------------------

    def insert(self, index, name, line, value):
        self.names.insert(index, name)
        self.lines.insert(index, line)
        self.values.insert(index, value)

    def prepend(self, name, display, value):
        """Add a header line at the top; `display` is the name as written (b"Via")."""
        self.insert(0, name, display + b": " + value, value)
        if name == b"via":
            self._via = None

    def replace(self, index, display, value):
        self.lines[index] = display + b": " + value
        self.values[index] = value

    def remove(self, index):
        del self.names[index]
        del self.lines[index]
        del self.values[index]

    def pop_first(self, name):
        """Remove the first element of a comma-list header; return it (or None)."""
        i = self.find(name)
        if i < 0:
            return None
        value = self.values[i]
        if b"," in value:
            parts = split_commas(value, name.decode())
            if len(parts) > 1:
                rest = b", ".join(parts[1:])
                display = self.lines[i].split(b":", 1)[0].rstrip()
                self.replace(i, display, rest)
                if name == b"via":
                    self._via = None
                return parts[0]
            value = parts[0] if parts else value
        self.remove(i)
        if name == b"via":
            self._via = None
        return value

    def decrement_max_forwards(self, default=70):
        """Decrement Max-Forwards, adding it with `default` when absent (mf_process_maxfwd_header)."""
        i = self.find(b"max-forwards")
        if i < 0:
            self.insert(len(self.names), b"max-forwards", b"Max-Forwards: %d" % default, b"%d" % default)
            return default
        mf = self.max_forwards - 1
        self.replace(i, b"Max-Forwards", b"%d" % mf)
        return mf

    def set_top_via(self, value, parsed=None):
        """Replace the first Via element (to add received/rport); `parsed`: the same, as a Via."""
        i = self.find(b"via")
        old = self.values[i]
        if b"," in old:
            parts = split_commas(old, "Via")
            parts[0] = value
            value_all = b", ".join(parts)
        else:
            value_all = value
        display = self.lines[i].split(b":", 1)[0].rstrip()
        self.replace(i, display, value_all)
        self._via = parsed

    # -- writing -------------------------------------------------------------

    def start_line(self):
        if self.method is not None:
            return self.method + b" " + self.uri + b" " + _SIP20
        return b"SIP/2.0 %d " % self.code + self.reason

    def head_bytes(self):
        """Header lines and the blank line, without the start line (for per-branch Via prepending)."""
        if not self.lines:
            return _CRLF  # only the blank line: another CRLF would be read as the body's start
        return _CRLF.join(self.lines) + b"\r\n\r\n"

    def to_bytes(self):
        if not self.lines:
            return self.start_line() + b"\r\n\r\n" + self.body
        return self.start_line() + _CRLF + _CRLF.join(self.lines) + b"\r\n\r\n" + self.body

    def __bytes__(self):
        return self.to_bytes()

    def __repr__(self):
        if self.method is not None:
            return f"<SipMessage {self.method.decode('latin-1')} {self.uri.decode('latin-1')}>"
        return f"<SipMessage {self.code} {self.reason.decode('latin-1')}>"


def _offset_of_line(lines, index):
    return sum(len(x) + 2 for x in lines[:index])


def _headers_slow(lines):
    names = []
    hlines = []
    values = []
    # continuation lines by the index of the header they continue, joined once at the end:
    # adding each to the growing header took 16-35 ms for 16,000 of them (quadratic)
    folded = {}
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        if line[0] in (0x20, 0x09):  # folded continuation of the previous header
            if not hlines:
                raise SipSyntaxError("continuation line before any header", offset=_offset_of_line(lines, i))
            more = folded.get(len(hlines) - 1)
            if more is None:
                folded[len(hlines) - 1] = [line.strip()]
            else:
                more.append(line.strip())
            continue
        colon = line.find(b":")
        if colon <= 0:
            raise SipSyntaxError(f"header line without a colon: {line[:40]!r}", offset=_offset_of_line(lines, i))
        try:
            name = canonical_name(line[:colon])
        except SipSyntaxError as err:
            err.offset = _offset_of_line(lines, i)
            raise
        names.append(name)
        hlines.append(line)
        values.append(line[colon + 1 :].strip())
    for index, more in folded.items():
        # RFC 3261 §7.3.1: the whitespace around a line fold is one space, in the line we forward
        # as in the value we read, so the line parses again to the same value
        more = list(filter(None, more))
        hlines[index] = b" ".join([hlines[index].rstrip(), *more])
        values[index] = b" ".join(filter(None, [values[index], *more]))
    return names, hlines, values


def _not_a_request_line(start):
    if start[:4].upper() == b"SIP/":  # a status line of a version we do not speak
        return f"unsupported version {start.split(b' ', 1)[0][:20]!r}"
    return f"bad request line {start[:60]!r}"


def parse_message(data, *, stream=False):
    """Parse one whole message. On a datagram the body is bounded by Content-Length
    (which may not promise more than arrived); on a stream the framer has already cut it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipSyntaxError("no blank line after the headers", offset=len(data))
    lines = data[:end].split(_CRLF)
    start = lines[0]
    if start.startswith(_SIP20):
        parts = start.split(b" ", 2)
        if len(parts) < 2 or parts[0] != _SIP20 or len(parts[1]) != 3 or not parts[1].isdigit():
            raise SipSyntaxError(f"bad status line {start[:60]!r}", offset=0)
        code = int(parts[1])
        if code < 100:
            raise SipSyntaxError(f"status code {code} is below 100", offset=8)
        method = uri = None
        reason = parts[2] if len(parts) > 2 else b""
    else:
        parts = start.split(b" ")
        if len(parts) != 3 or parts[2] != _SIP20:
            raise SipSyntaxError(_not_a_request_line(start), offset=0)
        method, uri = parts[0], parts[1]
        if not method.isalpha() or not method.isupper() or not uri:
            raise SipSyntaxError(f"bad request line {start[:60]!r}", offset=0)
        code = None
        reason = None
    hlines = lines[1:]
    names = []
    values = []
    append_name = names.append
    append_value = values.append
    cached = _NAME_CACHE.get
    for line in hlines:
        # one partition and one cache lookup per line: half the cost of find and two slices
        raw, colon, rest = line.partition(b":")
        name = cached(raw)  # never holds a name with leading whitespace (canonical_name)
        if name is None or not colon:
            if not colon or not raw or raw[0] in (0x20, 0x09):
                # folding, blank or broken lines: the careful path
                names, hlines, values = _headers_slow(lines)
                break
            try:
                name = canonical_name(raw)
            except SipSyntaxError:
                _headers_slow(lines)  # raises again, with the byte offset
                raise
        append_name(name)
        append_value(rest.strip())
    body = data[end + 4 :]
    try:
        cl_index = names.index(b"content-length")
    except ValueError:
        cl_index = -1
    if cl_index >= 0:
        cl = values[cl_index]
        # at most 10 digits, as CSeq: enough for any length, and int() never sees the 4301
        # digits it refuses with a ValueError (bytes.isdigit() is ASCII digits only)
        if len(cl) > 10 or not cl.isdigit():
            raise SipSyntaxError(
                f"Content-Length is not a number of at most 10 digits: {cl[:20]!r}",
                header="Content-Length",
                offset=_offset_of_line(lines, cl_index + 1),
            )
        n = int(cl)
        if n > len(body):
            raise SipSyntaxError(
                f"Content-Length {n} is beyond the body ({len(body)} bytes)",
                header="Content-Length",
                offset=end + 4 + len(body),
            )
        if n < len(body):
            body = body[:n]
    elif stream and body:
        raise SipSyntaxError("missing Content-Length on a stream", header="Content-Length")
    return SipMessage(method, uri, code, reason, names, hlines, values, body)
