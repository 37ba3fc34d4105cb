"""The dispatcher.list attributes that steer a destination's probes: `ping_from` (the From URI of
its OPTIONS) and `socket` / `ping_socket` (the local address they leave from, `udp:127.0.0.1:5070`).

Kamailio reads them from the attrs string (dispatch.c: ds_set_attrs); so do we, and they are
validated wherever attrs are stored (model field, dispatcher.list import, JSON-RPC dispatcher.add),
because both reach the wire: the From header of a probe and the address it is sent from.
"""

import ipaddress

from django.core.exceptions import ValidationError

from sip.errors import SipSyntaxError
from sip.uri import parse_wire_uri

SOCKET_ATTRS = ("ping_socket", "socket")  # ping_socket wins, as in Kamailio's ds_ping_set
SOCKET_PROTOS = ("udp", "tcp")


def _pairs(attrs):
    for item in (attrs or "").split(";"):
        key, eq, value = item.strip().partition("=")
        if key.strip():
            yield key.strip().lower(), value.strip() if eq else None


def parse_socket(text):
    """'udp:127.0.0.1:5070' (also '[::1]' for IPv6) -> ('udp', '127.0.0.1', 5070); raises ValueError
    saying what is wrong. An IP literal only: a probe's source is one of this host's addresses."""
    proto, sep, rest = (text or "").partition(":")
    if not sep or proto.lower() not in SOCKET_PROTOS:
        raise ValueError(f"{text!r} is not a socket: write proto:address:port, e.g. udp:127.0.0.1:5070")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not a socket: the port (1-65535) is missing or wrong")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r} is not a socket: {host!r} is not an IP address") from None
    return proto.lower(), str(ip), int(port)


def ping_attrs(attrs):
    """(ping_from or None, (proto, ip, port) or None) from an attrs string; raises ValueError naming the attribute."""
    ping_from, sock = None, None
    values = dict(_pairs(attrs))
    if "ping_from" in values:
        ping_from = values["ping_from"]
        if not ping_from:
            raise ValueError("ping_from needs a value (a SIP URI)")
        try:
            parse_wire_uri(ping_from)
        except SipSyntaxError as exc:
            raise ValueError(f"ping_from {ping_from!r} is not a SIP URI that can be sent ({exc})") from None
    for name in SOCKET_ATTRS:
        if name in values:
            try:
                parsed = parse_socket(values[name])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            sock = sock or parsed
    return ping_from, sock


def validate_ping_attrs(value):
    try:
        ping_attrs(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_ping_attr") from None
