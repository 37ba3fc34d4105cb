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
