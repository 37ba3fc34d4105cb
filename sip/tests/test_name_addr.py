"""name_addr and tag_of read past quoted display names, escapes included (RFC 3261 §25.1)."""

import pytest

from sip.errors import SipSyntaxError
from sip.headers import name_addr, tag_of


@pytest.mark.parametrize(
    ("value", "uri", "tag"),
    [
        (b"<sip:a@h>;tag=1", b"sip:a@h", b"1"),
        (b'"Dialer 7" <sip:a@h>;tag=2', b"sip:a@h", b"2"),
        (b'"not <this>;tag=x" <sip:a@h>;tag=3', b"sip:a@h", b"3"),
        (b'"a \\" quote <x>" <sip:a@h>;tag=4', b"sip:a@h", b"4"),  # an escaped quote stays inside
        (b'"a backslash \\\\" <sip:a@h>;tag=5', b"sip:a@h", b"5"),  # an escaped backslash does not
        (b'"one" "two" <sip:a@h>;tag=6', b"sip:a@h", b"6"),
        (b"sip:a@h;tag=7", b"sip:a@h", b"7"),
    ],
)
def test_the_address_and_tag_come_from_outside_the_quotes(value, uri, tag):
    assert name_addr(value, "From")[0] == uri
    assert tag_of(value, "From") == tag


def test_an_unterminated_quote_is_an_error_naming_the_header():
    with pytest.raises(SipSyntaxError, match="unterminated") as err:
        name_addr(b'"open <sip:a@h>;tag=1', "From")
    assert err.value.header == "From"
