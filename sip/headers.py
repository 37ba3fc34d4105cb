"""Header-level helpers: canonical names, comma lists, name-addr, parameters, Via.

Everything works on bytes, because the proxy forwards bytes and decoding every
header would cost more than routing needs.
"""

import re

from sip.errors import SipSyntaxError, UnsafeHeaderValue

# RFC 3261 §7.3.3 and the IANA registry: compact form -> canonical lower-case name.
COMPACT = {
    b"i": b"call-id",
    b"m": b"contact",
    b"e": b"content-encoding",
    b"l": b"content-length",
    b"c": b"content-type",
    b"f": b"from",
    b"t": b"to",
    b"v": b"via",
    b"k": b"supported",
    b"s": b"subject",
    b"r": b"refer-to",
    b"o": b"event",
    b"u": b"allow-events",
    b"x": b"session-expires",
    b"a": b"accept-contact",
    b"b": b"referred-by",
    b"j": b"reject-contact",
    b"d": b"request-disposition",
    b"y": b"identity",
    b"n": b"identity-info",
}

# Headers whose values may be comma-joined lists (RFC 3261 §7.3.1).
COMMA_LISTS = frozenset((b"via", b"route", b"record-route", b"contact"))

_DQUOTE, _BACKSLASH, _LT, _GT, _COMMA = 0x22, 0x5C, 0x3C, 0x3E, 0x2C

# Seen spellings of header names -> canonical name; bounded so junk cannot grow it.
_NAME_CACHE = {}
_NAME_CACHE_MAX = 512
_TOKEN = re.compile(rb"^[A-Za-z0-9.!%*_+`'~-]+$")
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
# RFC 3261 §25.1: no CTL in a header value we write, except HTAB (part of LWS).
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def is_token(text):
    """RFC 3261 token (a method name, a header name, a product): letters, digits, -.!%*_+`'~"""
    return isinstance(text, str) and _TOKEN_TEXT.fullmatch(text) is not None


def check_header_value(header, value):
    """Return `value` (bytes) unchanged, or raise UnsafeHeaderValue if it could break out of
    its header: what we write must never carry CR, LF, NUL or another control character."""
    if _CTL.search(value) is not None:
        raise UnsafeHeaderValue(header, value)
    return value


def server_val_error(text):
    """Why `text` is not a Server / User-Agent value (RFC 3261 §20.35: server-val *(LWS server-val),
    server-val = product / comment, product = token [/ token]), or None when it is one."""
    if not text or not text.strip():
        return "is empty"
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            i += 1
        elif ch == "(":
            i = _comment_end(text, i)
            if i < 0:
                return "has a comment ( ... ) that is not closed, or a control character in it"
        else:
            m = _TOKEN_TEXT.match(text, i)
            if m is None:
                return (
                    f"has {ch!r} at {i + 1}: use product names (letters, digits, -.!%*_+`'~, a / before a version) and (comments)"
                )
            i = m.end()
            if i < n and text[i] == "/":
                m = _TOKEN_TEXT.match(text, i + 1)
                if m is None:
                    return f"has nothing after '/' at {i + 1}"
                i = m.end()
            if i < n and text[i] not in " \t(":
                return f"has {text[i]!r} at {i + 1}: use product names (letters, digits, -.!%*_+`'~, a / before a version) and (comments)"
    return None


def _comment_end(text, i):
    """Index after the comment opening at text[i] (nested, with \\-escapes), or -1."""
    depth, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _is_ctl(ch):
            return -1
        if ch == "\\":
            if i + 1 >= n or _is_ctl(text[i + 1]):
                return -1
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _is_ctl(ch):
    return ch != "\t" and (ch < " " or ch == "\x7f")


def canonical_name(raw):
    """`raw` is the bytes before the colon; returns the lower-case full name or raises."""
    name = _NAME_CACHE.get(raw)
    if name is not None:
        return name
    stripped = raw.strip()
    if not stripped or not _TOKEN.match(stripped):
        raise SipSyntaxError(f"bad header name {raw[:40]!r}", header=raw[:40].decode("latin-1"))
    name = stripped.lower()
    name = COMPACT.get(name, name)
    # a line that starts with whitespace continues the previous header (folding): parse_message's
    # fast path takes any cached name for a new header, so such a spelling is never cached
    if len(_NAME_CACHE) < _NAME_CACHE_MAX and raw[0] not in (0x20, 0x09):
        _NAME_CACHE[raw] = name
    return name


def split_commas(value, header="header"):
    """Split a comma list, ignoring commas inside quoted strings and <URIs>.

    Linear, in C but for one step per element: a 64 KB value of one "<" and 65,000 commas took
    1.3-2 s when each piece cut inside <...> was rejoined to the growing element before it and
    its "<" and ">" recounted; a Python loop over the bytes of a quoted list took 7 ms.
    """
    if b"," not in value:
        return [value]
    if b'"' in value:
        if _COMMA_LIST.fullmatch(value) is None:
            raise SipSyntaxError("unterminated quoted string", header=header)
        parts = _LIST_ELEMENT.findall(value)
    elif b"<" in value:
        parts = _LIST_ELEMENT_NO_QUOTE.findall(value)
    else:
        parts = value.split(b",")
    return list(filter(None, map(bytes.strip, parts)))


# A list element (RFC 3261 §7.3.1): text, quoted strings (§25.1, with quoted-pair escapes) and
# <...>, in which a quoted string may hold ">" or ","; a "<" not closed runs to the end, a ">"
# outside <...> is text. Possessive, so nothing is kept to backtrack into. _LIST_ELEMENT finds
# each element of a list that _COMMA_LIST has matched whole (which fails only on a quoted string
# not closed), a run of commas before it at once; _LIST_ELEMENT_NO_QUOTE: the same without quotes.
_QUOTED = rb'"(?:[^"\\]++|\\.)*+"'
_ELEMENT = rb'(?:[^",<]++|' + _QUOTED + rb'|<(?:[^">]++|' + _QUOTED + rb")*+>?)*+"
_COMMA_LIST = re.compile(_ELEMENT + rb"(?:," + _ELEMENT + rb")*+", re.DOTALL)
_LIST_ELEMENT = re.compile(b",*+(" + _ELEMENT + b")", re.DOTALL)  # empty elements skipped at once
_LIST_ELEMENT_NO_QUOTE = re.compile(rb",*+((?:[^,<]++|<[^>]*+>?)*+)")


# Everything before the first "<" outside quoted strings (RFC 3261 §25.1: quoted-string, with
# quoted-pair escapes). Possessive, so nothing is kept to backtrack into: linear, in C.
_BEFORE_LT = re.compile(rb'(?:[^"<]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)


def _find_lt_outside_quotes(value):
    """Index of the first "<" outside quoted strings, -1 if none, -2 for an unterminated quote.
    A loop in Python cost about 1 us per quoted string or escape: a 60 KB value made of them
    held the loop 8-13 ms; this is 1.7 ms for the worst of them, and 0.9 us for a caller's name."""
    if b'"' not in value:
        return value.find(b"<")
    end = _BEFORE_LT.match(value).end()
    if end == len(value):
        return -1
    return end if value[end] == _LT else -2  # else it stopped at a quote it could not close


def name_addr(value, header="header"):
    """Split `"Name" <uri>;params` or `uri;params` into (uri, params bytes after the address)."""
    lt = _find_lt_outside_quotes(value)
    if lt == -2:
        raise SipSyntaxError("unterminated quoted string", header=header)
    if lt >= 0:
        gt = value.find(b">", lt)
        if gt < 0:
            raise SipSyntaxError("'<' without '>'", header=header)
        return value[lt + 1 : gt].strip(), value[gt + 1 :]
    # addr-spec form: header parameters start at the first ';' (RFC 3261 §20.10).
    semi = value.find(b";")
    if semi < 0:
        return value.strip(), b""
    return value[:semi].strip(), value[semi:]


def param(params, name):
    """Value of `;name=value` in a parameter string (bytes), b"" for a bare flag, None if absent."""
    if not params:
        return None
    low = params.lower()
    key = b";" + name
    n = len(params)
    pos = 0
    while True:
        i = low.find(key, pos)
        if i < 0:
            return None
        j = i + len(key)
        c = params[j] if j < n else 0x3B
        while c in (0x20, 0x09):  # LWS before '=' or ';'
            j += 1
            c = params[j] if j < n else 0x3B
        if c == 0x3D:  # '='
            end = params.find(b";", j + 1)
            return params[j + 1 : end if end >= 0 else n].strip()
        if c == 0x3B:  # ';' or the end: a bare flag
            return b""
        pos = i + 1  # a prefix of a longer name


def tag_of(value, header):
    """The tag parameter of a From/To value, or None."""
    if b"tag" not in value and b"TAG" not in value and b"Tag" not in value:
        return None
    _, params = name_addr(value, header)
    tag = param(params, b"tag")
    return tag or None


# One via-parm, strictly: RFC 3261 §20.42 sent-by = host [":" port], host = hostname / IPv4address
# / IPv6reference. A host is written with letters, digits, "-" and "." (and "_", which some hosts'
# names carry), an IPv6 reference with hex digits, ":" and "." between brackets; a port is 1-5
# ASCII digits. No control character, NUL, quote or non-ASCII byte gets into Via.host, and int()
# never sees more than 5 digits. Anything else is diagnosed by _via_error (the rare path).
_VIA = re.compile(
    rb"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+(?:([A-Za-z0-9._-]+)|\[([0-9A-Fa-f:.]+)\])(?::([0-9]{1,5}))?\s*(.*)",
    re.DOTALL,
)
# The same, loosely (sent-by up to the first ";" or space): only to say what is wrong.
_VIA_LOOSE = re.compile(rb"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+([^;\s]+)\s*(.*)", re.DOTALL)
_VIA_HOST = re.compile(rb"[A-Za-z0-9._-]+")
_VIA_HOST6 = re.compile(rb"[0-9A-Fa-f:.]+")


class Via:
    """One via-parm: transport, sent-by host/port and the parameters routing needs."""

    __slots__ = ("transport", "host", "port", "params", "raw")

    def __init__(self, transport, host, port, params, raw):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = params
        self.raw = raw

    @property
    def branch(self):
        return param(self.params, b"branch")

    @property
    def received(self):
        return param(self.params, b"received")

    @property
    def rport(self):
        """None when absent, b"" when requested (bare flag), digits when filled in."""
        return param(self.params, b"rport")


def parse_via(value):
    """Parse one via-parm (not a comma list)."""
    m = _VIA.match(value)
    if m is not None:
        transport, host, host6, port_text, params = m.groups()
        port = None if port_text is None else int(port_text)  # at most 5 ASCII digits
        params = params.rstrip()
        if (port is None or 0 < port < 65536) and (not params or params[0] == 0x3B):  # ";"
            return Via(transport.upper().decode("ascii"), (host or host6).decode("ascii"), port, params, value)
    raise SipSyntaxError(_via_error(value), header="Via")


def _via_error(value):
    """What is wrong with a via-parm parse_via refused."""
    m = _VIA_LOOSE.match(value)
    if m is None:
        return f"not a Via value: {value[:60]!r}"
    _, sent_by, params = m.groups()
    if sent_by.startswith(b"["):
        end = sent_by.find(b"]")
        if end < 0:
            return "IPv6 sent-by is not closed with ]"
        host, tail = sent_by[1:end], sent_by[end + 1 :]
        if tail and not tail.startswith(b":"):
            return f"unexpected {tail[:30]!r} after IPv6 sent-by"
        port_text = tail[1:] if tail else None
        good_host = _VIA_HOST6.fullmatch(host)
    else:
        host, colon, port_text = sent_by.partition(b":")
        port_text = port_text if colon else None
        good_host = _VIA_HOST.fullmatch(host)
    if not host:
        return "Via has no sent-by host"
    if good_host is None:
        return f"sent-by host {host[:40]!r} is not a host name or IP address"
    if port_text is not None and not (0 < len(port_text) <= 5 and port_text.isdigit() and 0 < int(port_text) < 65536):
        return f"sent-by port must be 1-65535, got {port_text[:10]!r}"
    return f"junk after sent-by: {params[:30]!r}"
