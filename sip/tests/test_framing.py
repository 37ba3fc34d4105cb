import pytest

from sip.errors import SipSyntaxError
from sip.framing import StreamFramer
from sip.message import parse_message
from sip.tests.fixtures import COMPACT, INVITE, RESPONSE


def test_it_splits_several_messages_in_one_read():
    framer = StreamFramer()
    out = framer.feed(INVITE + RESPONSE + COMPACT)
    assert out == [INVITE, RESPONSE, COMPACT]


def test_it_joins_a_message_over_many_reads():
    framer = StreamFramer()
    stream = INVITE + RESPONSE
    got = []
    for i in range(len(stream)):
        got.extend(framer.feed(stream[i : i + 1]))
    assert got == [INVITE, RESPONSE]
    assert parse_message(got[0], stream=True).body == b"v=0\n"


def test_it_skips_crlf_keepalives_and_counts_pings():
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == []
    assert framer.pings == 1
    assert framer.feed(b"\r\n" + INVITE) == [INVITE]


def test_a_ping_read_in_pieces_is_counted():
    for cut in (1, 2, 3):
        framer = StreamFramer()
        for i in range(0, 4, cut):
            framer.feed(b"\r\n\r\n"[i : i + cut])
        assert framer.pings == 1, cut


def test_every_ping_of_a_connection_is_counted_however_it_is_read():
    framer = StreamFramer()
    for n in range(1, 4):
        assert framer.feed(b"\r\n") == [] and framer.feed(b"\r\n") == []
        assert framer.pings == n
    framer.pings = 0
    assert framer.feed(b"\r\n\r\n") == [] and framer.pings == 1  # whole, after pieces


def test_crlfs_around_a_message_are_no_ping():
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(INVITE + b"\r\n") == [INVITE]
    assert framer.feed(RESPONSE) == [RESPONSE]
    assert framer.pings == 0
    assert framer.feed(b"\r") == [] and framer.feed(b"\n" + INVITE) == [INVITE]
    assert framer.pings == 0
    assert framer.feed(b"\r") == [] and framer.feed(b"\n\r\n" + INVITE) == [INVITE]
    assert framer.pings == 1  # a ping, then a message


def test_it_refuses_a_stream_it_cannot_frame():
    with pytest.raises(SipSyntaxError) as err:
        StreamFramer().feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: x"))
    assert err.value.header == "Content-Length"
    with pytest.raises(SipSyntaxError):
        StreamFramer(max_size=100).feed(b"A" * 200)


def test_it_waits_for_the_whole_body():
    framer = StreamFramer()
    head, body = INVITE[:-2], INVITE[-2:]
    assert framer.feed(head) == []
    assert framer.feed(body) == [INVITE]
