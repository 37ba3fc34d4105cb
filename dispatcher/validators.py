"""Validation shared by models, forms, the importer and the API: messages name the value and the reason."""

import ipaddress
import re

from django.core.exceptions import ValidationError

from lbcore.hep import parse_hep_destination
from sip.errors import SipSyntaxError
from sip.headers import is_token, server_val_error
from sip.uri import parse_wire_uri

_REPLY_CODE_ITEM = re.compile(r"^(code|class)\s*=?\s*(\d+)$", re.IGNORECASE)
# Control characters (CR and LF above all) end a header line in SIP and a line in dispatcher.list.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_sip_uri(value):
    """A SIP URI that can go on the wire as it is: no spaces, control characters, quotes or <>."""
    try:
        parse_wire_uri(value)
    except SipSyntaxError as exc:
        raise ValidationError(f"{value!r} is not a valid SIP URI: {exc}", code="invalid_uri") from None


def validate_sip_method(value):
    """ds_ping_method: a SIP method name, which RFC 3261 makes a token."""
    if not is_token(value):
        raise ValidationError(
            f"{value!r} is not a SIP method name: use letters, digits and -.!%*_+`'~ only, e.g. OPTIONS",
            code="invalid_method",
        )


def validate_server_header(value):
    """Server / User-Agent text (RFC 3261 server-val): product names and (comments), no control characters."""
    why = server_val_error(value)
    if why is not None:
        raise ValidationError(f"{value!r} is not a Server header value: it {why}", code="invalid_server_header")


def validate_no_control_characters(value):
    """For text that reaches a dispatcher.list line or the wire verbatim (attrs, duid)."""
    match = _CONTROL.search(value or "")
    if match:
        raise ValidationError(
            f"{value!r} has a control character ({match.group()!r} at {match.start() + 1}): line breaks, tabs and NUL are not allowed",
            code="control_character",
        )


def validate_hep_destination(value):
    """Where the proxies send their SIP capture: HOST:PORT, or empty for none."""
    try:
        parse_hep_destination(value)
    except ValueError as exc:
        raise ValidationError(
            f"{value!r} is not a HEP destination: {exc}. Use HOST:PORT (e.g. 10.0.0.5:9060), or leave it empty for no capture",
            code="invalid_hep_destination",
        ) from None


def validate_network(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(f"{value!r} is not an IP address or CIDR network", code="invalid_network") from None


def normalise_network(value):
    return str(ipaddress.ip_network(value.strip(), strict=False))


def parse_codes(value):
    """'500,503' -> (500, 503); raises ValidationError naming the bad item."""
    codes = []
    for item in re.split(r"[,\s]+", value.strip()):
        if not item:
            continue
        if not item.isdigit() or not 100 <= int(item) <= 699:
            raise ValidationError(f"{item!r} is not a SIP response code (100-699)", code="invalid_code")
        codes.append(int(item))
    return tuple(codes)


def validate_codes(value):
    parse_codes(value)


def parse_reply_codes(value):
    """Kamailio's ds_ping_reply_codes: 'code=404;class=2' (also 'class2') -> (codes, classes).

    Every 2xx is always a good reply, as in Kamailio's ds_options_callback (200-299 or a listed code).
    """
    codes, classes = {200}, {2}
    for item in re.split(r"[;,]", value or ""):
        item = item.strip()
        if not item:
            continue
        match = _REPLY_CODE_ITEM.match(item)
        if not match:
            raise ValidationError(f"{item!r}: use code=NNN or class=N, separated by ;", code="invalid_reply_codes")
        kind, number = match.group(1).lower(), int(match.group(2))
        if kind == "code" and not 100 <= number <= 699:
            raise ValidationError(f"{item!r}: a code is 100-699", code="invalid_reply_codes")
        if kind == "class" and not 1 <= number <= 6:
            raise ValidationError(f"{item!r}: a class is 1-6", code="invalid_reply_codes")
        (codes if kind == "code" else classes).add(number)
    return frozenset(codes), frozenset(classes)


def validate_reply_codes(value):
    parse_reply_codes(value)


def is_good_reply(code, reply_codes):
    codes, classes = reply_codes
    return code in codes or code // 100 in classes


def validate_attr_value(value):
    """A value kept inside dispatcher.list attrs (`duid=...;`): one word, no ; to split it."""
    validate_no_control_characters(value)
    if value and re.search(r"[\s;]", value):
        raise ValidationError(f"{value!r} must be one word without spaces or ;", code="invalid_attr_value")
