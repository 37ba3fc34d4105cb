"""hep_destination as the panel stores it and every proxy reads it: HOST:PORT or "" (off)."""

import pytest

from lbcore.hep import parse_hep_destination


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("", None),
        ("  ", None),
        ("10.0.0.5:9060", ("10.0.0.5", 9060)),
        (" 127.0.0.1:1 ", ("127.0.0.1", 1)),
        ("[2001:db8::5]:65535", ("2001:db8::5", 65535)),
        ("homer.example.com:9060", ("homer.example.com", 9060)),
        ("localhost:9060", ("localhost", 9060)),
    ],
)
def test_it_reads_host_and_port(text, parsed):
    assert parse_hep_destination(text) == parsed


@pytest.mark.parametrize(
    "text, why",
    [
        ("10.0.0.5", "port is missing"),
        ("10.0.0.5:0", "1 to 65535"),
        ("10.0.0.5:65536", "1 to 65535"),
        ("10.0.0.5:http", "1 to 65535"),
        ("10.0.0.5:\u0669\u0660\u0666\u0660", "1 to 65535"),  # Arabic-Indic 9060: int() reads it
        ("10.0.0.5:\u00b2", "1 to 65535"),  # superscript 2: str.isdigit(), int() refuses it
        ("10.0.0.5:" + "9" * 4301, "1 to 65535"),
        (":9060", "host is missing"),
        ("2001:db8::5:9060", "brackets"),
        ("[2001:db8::5]", "brackets"),
        ("[10.0.0.5]:9060", "brackets are for IPv6"),
        ("[fe80::zz]:9060", "not an IPv6"),
        ("2001:db8::5", "brackets"),
        ("10.0.0.300:9060", "not an IPv4"),
        ("224.0.0.1:9060", "multicast"),
        ("0.0.0.0:9060", "unspecified"),
        ("255.255.255.255:9060", "broadcast"),
        ("homer example:9060", "neither an IP address nor a host name"),
        ("homer\r\nX: y:9060", "neither an IP address nor a host name"),
        ("-homer.example.com:9060", "neither an IP address nor a host name"),
    ],
)
def test_it_says_what_is_wrong(text, why):
    with pytest.raises(ValueError, match=why):
        parse_hep_destination(text)
