"""The framer resumes its search where it stopped: a message trickled a byte at a time costs
linear work, and every way of cutting the stream still yields the same messages."""

from sip.framing import StreamFramer
from sip.tests.fixtures import COMPACT, INVITE, RESPONSE


def test_it_does_not_rescan_headers_it_has_searched():
    framer = StreamFramer()
    head = b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Pad: a\r\n" * 100
    for i in range(len(head)):
        assert framer.feed(head[i : i + 1]) == []
    assert framer.scanned == len(head) - 3  # the next read searches only the new bytes and 3 before
    assert framer.feed(b"Content-Length: 2\r\n\r\n") == []
    assert framer.total == len(head) + len(b"Content-Length: 2\r\n\r\n") + 2  # headers parsed once
    assert framer.feed(b"ok") == [head + b"Content-Length: 2\r\n\r\nok"]
    assert (framer.scanned, framer.total) == (0, 0)


def test_every_two_way_cut_yields_the_same_messages():
    stream = b"\r\n\r\n" + INVITE + RESPONSE + b"\r\n" + COMPACT
    for cut in range(len(stream) + 1):
        framer = StreamFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == [INVITE, RESPONSE, COMPACT], cut


def test_a_cut_inside_the_blank_line_is_found():
    end = INVITE.index(b"\r\n\r\n")
    for step in (end + 1, end + 2, end + 3):
        framer = StreamFramer()
        assert framer.feed(INVITE[:step]) == []
        assert framer.feed(INVITE[step:]) == [INVITE]
