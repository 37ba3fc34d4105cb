"""Validation shared by models, forms, the importer and the API: messages name the value and the reason."""

import ipaddress
import re

from django.core.exceptions import ValidationError

from sip.errors import SipSyntaxError
from sip.uri import parse_uri

_REPLY_CODE_ITEM = re.compile(r"^(code|class)\s*=?\s*(\d+)$", re.IGNORECASE)


def validate_sip_uri(value):
    try:
        parse_uri(value)
    except SipSyntaxError as exc:
        raise ValidationError(f"{value!r} is not a valid SIP URI: {exc}", code="invalid_uri") from None


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

    200 is always a good reply, as in Kamailio.
    """
    codes, classes = {200}, set()
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
