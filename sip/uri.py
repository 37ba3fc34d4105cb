"""SIP and SIPS URIs (RFC 3261 §19.1): scheme, user, host (name, IPv4, [IPv6]), port, params."""

import ipaddress
import re
from dataclasses import dataclass, field

from sip.errors import SipSyntaxError

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"sip": 5060, "sips": 5061}
# RFC 3261 §25.1: what a SIP-URI is written with (unreserved, reserved, %-escapes, [] for IPv6).
# No space, control character, quote or angle bracket: each would let the URI end its header line
# or its <...> and start something else.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-_.!~*'()%;/:@&=+$,\[\]]+")
# \Z, not $: "$" also matches before a final "\n", which would let a host name end with one
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str
    host: str
    port: int | None = None
    user: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def transport(self):
        return self.params.get("transport", "tls" if self.scheme == "sips" else "udp").lower()

    @property
    def effective_port(self):
        return self.port or DEFAULT_PORTS[self.scheme]

    @property
    def hostport(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    def __str__(self):
        user = f"{self.user}@" if self.user is not None else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"{self.scheme}:{user}{self.hostport}{params}"


def parse_uri(text):
    """Parse a sip:/sips: URI; raise SipSyntaxError saying what is wrong."""
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise SipSyntaxError(f"URI must start with sip: or sips:, got {text[:40]!r}")
    rest, _, _headers = rest.partition("?")
    user = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
    hostport, *raw_params = rest.split(";")
    params = {}
    for raw in raw_params:
        if not raw:
            continue
        name, eq, value = raw.partition("=")
        params[name.lower()] = value if eq else None
    host, port = _split_hostport(hostport, text)
    transport = params.get("transport")
    if transport is not None and transport.lower() not in TRANSPORTS:
        raise SipSyntaxError(f"transport must be udp, tcp or tls, got {transport[:20]!r}")
    return SipUri(scheme=scheme, host=host, port=port, user=user, params=params)


def parse_wire_uri(text):
    """parse_uri for a URI we will write into a message (a probe's request line, To, From):
    the text must be exactly a SIP URI, nothing around it, no ?headers, no character outside
    RFC 3261's URI set. Raises SipSyntaxError saying what is wrong."""
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace")
    if "?" in text:
        raise SipSyntaxError("URI headers (?...) cannot be sent in a request")
    m = _URI_CHARS.match(text)
    end = m.end() if m else 0
    if end < len(text):
        raise SipSyntaxError(
            f"character {text[end]!r} at {end + 1} is not allowed in a SIP URI (no spaces, control characters, quotes or <>; escape others as %XX)"
        )
    return parse_uri(text)


def _split_hostport(hostport, text):
    if not hostport:
        raise SipSyntaxError(f"URI has no host: {text[:80]!r}")
    port = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipSyntaxError(f"IPv6 literal is not closed with ]: {text[:80]!r}")
        host, tail = hostport[1:end], hostport[end + 1 :]
        if "%" in host:  # ipaddress takes a zone id of any characters; RFC 3261's IPv6reference has none
            raise SipSyntaxError(f"{host[:80]!r} is not an IPv6 address (no %zone in a SIP URI)")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SipSyntaxError(f"{host[:80]!r} is not an IPv6 address") from None
        if tail:
            if not tail.startswith(":"):
                raise SipSyntaxError(f"unexpected {tail[:30]!r} after IPv6 literal")
            port = _port(tail[1:])
        return host, port
    host, colon, port_text = hostport.partition(":")
    if colon:
        port = _port(port_text)
    if not host:
        raise SipSyntaxError(f"URI has no host: {text[:80]!r}")
    digits = host.replace(".", "")
    if digits.isascii() and digits.isdigit():  # str.isdigit() alone also takes "²" and "٣"
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise SipSyntaxError(f"{host[:80]!r} is not a valid IPv4 address") from None
    elif not _HOSTNAME.match(host):
        raise SipSyntaxError(f"{host[:80]!r} is not a valid host name")
    return host.lower(), port


def _port(text):
    # ASCII digits only: str.isdigit() takes "²" (int() refuses it: ValueError) and "٥" (int()
    # reads 5); and at most 5 of them, so int() never sees thousands
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not 0 < int(text) < 65536:
        raise SipSyntaxError(f"port must be 1-65535, got {text[:10]!r}")
    return int(text)
