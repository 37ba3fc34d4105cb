"""Where the proxy's SIP capture goes: the `hep_destination` setting, read the same way by the
panel (which refuses a bad value where it is stored) and by every proxy (which applies it).

`hep_destination` is "" (capture off) or HOST:PORT, HOST an IPv4 literal, a bracketed IPv6
literal or a DNS name; the copies go there as HEPv3 over UDP (Homer, heplify-server, sngrep -L).
"""

import ipaddress
import re

HEP_CAPTURE_ID_MAX = 0xFFFFFFFF  # HEP3 chunk 0x000c is a uint32
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_hep_destination(text):
    """'10.0.0.5:9060', '[2001:db8::5]:9060' or 'homer.example.com:9060' -> (host, port), the host
    without brackets; None for "" (off). ValueError says what is wrong, for a person to fix."""
    text = (text or "").strip()
    if not text:
        return None
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or not rest.startswith(":"):
            raise ValueError("an IPv6 address goes in brackets before the port, e.g. [2001:db8::5]:9060")
        port = rest[1:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError("the port is missing, e.g. 10.0.0.5:9060")
        if ":" in host and _is_ipv6(host + ":" + port):
            raise ValueError("an IPv6 address goes in brackets before the port, e.g. [2001:db8::5]:9060")
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    if not host:
        raise ValueError("the host is missing, e.g. 10.0.0.5:9060")
    why = _host_error(host, bracketed=text.startswith("["))
    if why:
        raise ValueError(why)
    return host, int(port)


def _is_ipv6(text):
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def _host_error(host, bracketed):
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        if bracketed:
            return f"{host!r} is not an IPv6 address"
        digits = host.replace(".", "")
        if digits.isascii() and digits.isdigit():
            return f"{host!r} is not an IPv4 address"
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            return f"{host!r} is neither an IP address nor a host name (letters, digits, - and . only)"
        return None
    if bracketed != (addr.version == 6):
        return f"{host!r}: brackets are for IPv6 addresses only"
    # one copy of every SIP message to many hosts, or to none: never what someone meant
    if addr.is_multicast or addr.is_unspecified or host == "255.255.255.255":
        return f"{host!r} is a multicast, broadcast or unspecified address: name one host"
    return None
