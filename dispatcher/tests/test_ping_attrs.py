"""A destination's ping_from and socket attributes reach the wire (a probe's From header, the address
it leaves from), so they are validated where attrs are stored: the model (panel, API), the import."""

import pytest

from dispatcher.kamailio_list import DispatcherListError
from dispatcher.models import Destination
from dispatcher.ping_attrs import parse_socket, ping_attrs
from dispatcher.services import import_dispatcher_list


def test_it_reads_kamailios_attributes():
    assert ping_attrs("duid=a;ping_from=sip:ping@127.0.0.1;socket=udp:127.0.0.1:5070") == (
        "sip:ping@127.0.0.1",
        ("udp", "127.0.0.1", 5070),
    )
    assert ping_attrs("socket=udp:127.0.0.1:5070;ping_socket=tcp:[::1]:5071")[1] == ("tcp", "::1", 5071)  # ping_socket wins
    assert ping_attrs("weight=5") == (None, None)


@pytest.mark.parametrize(
    "text, words",
    [
        ("127.0.0.1:5070", "proto:address:port"),
        ("sctp:127.0.0.1:5070", "proto:address:port"),
        ("udp:127.0.0.1", "port"),
        ("udp:127.0.0.1:70000", "port"),
        ("udp:asterisk.example.com:5060", "not an IP address"),
    ],
)
def test_a_bad_socket_says_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        parse_socket(text)


def test_the_api_refuses_a_ping_from_that_cannot_be_sent_on_the_attrs_field(as_admin, table):
    body = {"set": 1, "uri": "sip:127.0.0.1:5099", "attrs": "ping_from=sip:a b@127.0.0.1"}
    response = as_admin.post("/api/v1/destinations/", body, format="json")
    assert response.status_code == 400 and "ping_from" in response.json()["attrs"][0]
    assert not Destination.objects.filter(uri="sip:127.0.0.1:5099").exists()


def test_the_import_names_the_line_with_a_bad_socket(db):
    with pytest.raises(DispatcherListError) as info:
        import_dispatcher_list("1 sip:127.0.0.1:5081\n1 sip:127.0.0.1:5082 0 0 duid=b;socket=udp:10.0.0.1\n")
    (error,) = info.value.errors
    assert error.lineno == 2 and "socket" in error.message and "port" in error.message
    assert not Destination.objects.exists()
