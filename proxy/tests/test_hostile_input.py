"""Bytes from anyone that the parser cannot read are answered as malformed (a 400 for a request,
nothing for a response) or close their TCP connection as unframeable: never an exception out of
the message handler (uvloop's traceback per datagram, unthrottled) nor a logged crash."""

import logging

import pytest

from proxy.tests.harness import Harness, request, run
from proxy.tests.tcp_support import TcpHarness, options

MANY_DIGITS = b"5" * 4301  # more than int() takes (sys.get_int_max_str_digits)


def _none(ports):
    return [], []


def _crashes(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _runs_clean(caplog, scenario):
    """Run the scenario with warnings captured: nothing may be logged at ERROR (a crash)."""
    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert _crashes(caplog) == []


def test_a_content_length_of_thousands_of_digits_is_a_400(caplog):
    async def scenario():
        async with Harness(_none) as h:
            bad = request(b"OPTIONS", h.uac_port, h.proxy_port, b"cl-digits")
            h.send(bad.replace(b"Content-Length: 0", b"Content-Length: " + MANY_DIGITS))
            reply = await h.uac.recv()
            assert reply.code == 400 and b"Content-Length" in reply.reason
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"after"))
            assert (await h.uac.recv()).code == 200

    run(scenario())
    assert _crashes(caplog) == []


def test_a_tcp_content_length_of_thousands_of_digits_closes_the_connection_as_unframeable(caplog):
    async def scenario():
        async with TcpHarness(_none) as h:
            c = await h.connect()
            c.write(options(h.proxy_port, c.lport).replace(b"Content-Length: 0", b"Content-Length: " + MANY_DIGITS))
            await c.closed_within(1.0)
            assert h.core.accounting.totals["tcp_closed_unframeable"] == 1
            assert await (await h.connect()).ask() == 200

    _runs_clean(caplog, scenario)


def test_a_via_port_of_thousands_of_digits_is_malformed_not_a_crash(caplog):
    async def scenario():
        async with Harness(_none) as h:
            h.send(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h:" + MANY_DIGITS + b"\r\n\r\n")
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"after"))
            assert (await h.uac.recv()).code == 200

    _runs_clean(caplog, scenario)
    assert any("malformed SIP" in r.getMessage() for r in caplog.records)


def test_a_route_port_of_a_unicode_digit_is_malformed_not_a_crash(caplog):
    async def scenario():
        async with Harness(_none) as h:
            bye = request(b"BYE", h.uac_port, h.proxy_port, b"sup", to_tag=b"2", routes=[b"<sip:h:\xb2>"])
            h.send(bye)
            reply = await h.uac.recv()
            assert reply.code == 400 and b"port" in reply.reason

    _runs_clean(caplog, scenario)


def test_a_via_of_only_commas_is_malformed_not_a_crash(caplog):
    async def scenario():
        async with Harness(_none) as h:
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"commas").replace(b"Via: ", b"Via: , ,\r\nX-Was: "))
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"after"))
            assert (await h.uac.recv()).code == 200

    _runs_clean(caplog, scenario)
    assert any("malformed SIP" in r.getMessage() for r in caplog.records)


def _stray(h, second_via):
    """A response no transaction knows whose top Via is ours: relayed statelessly to the next Via."""
    return (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKstray\r\n" % h.proxy_port
        + b"Via: "
        + second_via
        + b"\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\n"
        b"Call-ID: stray\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize(
    "params",
    [
        b";received=1\x00",  # inet_aton: ValueError "embedded null character"
        b";received=\xb2",  # "²": str.isdigit()
        b";received=fe80::1%\x00",  # an IPv6 zone of any characters
        b";rport=abc",
        b";rport=" + MANY_DIGITS,
        b";rport=99999",  # sendto: OverflowError (asyncio's loop closes the listener on it)
        b";rport=WRAPPED",  # 65536 + the UAC's port: uvloop sends to the port mod 65536
        b";rport=0",
    ],
)
def test_a_stray_response_with_a_bad_next_via_is_dropped_not_a_crash(caplog, params):
    async def scenario():
        async with Harness(_none) as h:
            wrapped = b"%d" % (65536 + h.uac_port)
            h.send(_stray(h, b"SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKnext" % h.uac_port + params.replace(b"WRAPPED", wrapped)))
            assert await h.uac.silent(0.3, skip=())
            h.send(_stray(h, b"SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKnext;rport=%d" % (h.uac_port, h.uac_port)))
            assert (await h.uac.recv(skip=())).code == 200  # a good one is relayed

    _runs_clean(caplog, scenario)


def test_a_stray_response_with_a_nul_in_the_next_via_host_is_dropped_not_a_crash(caplog):
    async def scenario():
        async with Harness(_none) as h:
            h.send(_stray(h, b"SIP/2.0/UDP 1\x00"))  # the fuzzer's: ValueError out of literal()
            assert await h.uac.silent(0.3, skip=())

    _runs_clean(caplog, scenario)
