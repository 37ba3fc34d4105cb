"""The reader of `runproxy --processes N` sends every message of a call to one worker."""

from proxy.sharding import call_id, frame, unframe, worker_for


def _msg(first, call_id_line, eol=b"\r\n"):
    return eol.join([first, b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx", call_id_line, b"CSeq: 1 X", b"", b""])


def test_every_message_of_a_call_goes_to_the_same_worker_whatever_its_spelling():
    spellings = [
        _msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: call-17@host"),
        _msg(b"CANCEL sip:a@b SIP/2.0", b"call-id:call-17@host"),
        _msg(b"ACK sip:a@b SIP/2.0", b"i: call-17@host"),
        _msg(b"BYE sip:a@b SIP/2.0", b"CALL-ID :  call-17@host", eol=b"\n"),
        _msg(b"SIP/2.0 200 OK", b"Call-ID: call-17@host "),
    ]
    assert {call_id(m) for m in spellings} == {b"call-17@host"}
    assert len({worker_for(m, 4) for m in spellings}) == 1


def test_calls_spread_over_the_workers():
    workers = [worker_for(_msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: %d-4711@10.0.0.1" % n), 2) for n in range(1000)]
    assert 400 < workers.count(0) < 600


def test_a_message_without_call_id_still_goes_somewhere():
    assert call_id(b"garbage") == b"" and worker_for(b"garbage", 3) in (0, 1, 2)


def test_the_source_address_survives_the_hand_over():
    assert unframe(frame(b"INVITE ...", ("192.0.2.7", 5071))) == (b"INVITE ...", ("192.0.2.7", 5071))
    assert unframe(frame(b"x", ("2001:db8::1", 5060))) == (b"x", ("2001:db8::1", 5060))
