"""A TCP message must end within tcp_message_timeout_ms of its first byte (slowloris), a
connection with no traffic is closed after tcp_idle_timeout_s (CRLF keepalives count), an
oversized message closes its connection, and an outbound connection closed while idle is
opened again for the dialog's next request."""

import asyncio
import logging
import time

from proxy.tests.harness import dest, request, run
from proxy.tests.tcp_support import TcpHarness, TcpUas, options


def _none(ports):
    return [], []


def _tcp_server(ports):
    return [dest(1, ports[0], transport="tcp")], []


def _closes(caplog, what):
    return [r.getMessage() for r in caplog.records if r.name == "proxy.transport" and what in r.getMessage()]


def test_a_slowloris_client_is_closed_while_a_good_client_is_answered(caplog):
    async def scenario():
        async with TcpHarness(_none, tcp_message_timeout_ms=400) as h:
            slow, good = await h.connect(), await h.connect()
            data = options(h.proxy_port, slow.lport)
            started = time.monotonic()

            async def trickle():
                for i in range(len(data)):  # one byte per 50 ms: 12 s for the message
                    slow.write(data[i : i + 1])
                    await asyncio.sleep(0.05)

            async def ask_meanwhile():
                answers = []
                while time.monotonic() - started < 0.9:
                    answers.append(await good.ask())
                    await asyncio.sleep(0.05)
                return answers

            trickler = asyncio.ensure_future(trickle())
            asked = asyncio.ensure_future(ask_meanwhile())
            closed_after = await slow.closed_within(2.0)
            trickler.cancel()
            answers = await asked
            assert 0.38 <= closed_after < 1.0, closed_after  # the loop clock is read once per iteration
            assert answers and set(answers) == {200}
            assert await good.ask() == 200  # still open: it finished every message it began

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    lines = _closes(caplog, "without finishing it")
    assert len(lines) == 1 and lines[0].startswith("tcp:127.0.0.1:"), caplog.text


def test_a_message_that_ends_in_time_is_answered_however_it_is_cut():
    async def scenario():
        async with TcpHarness(_none, tcp_message_timeout_ms=600) as h:
            c = await h.connect()
            for n in (1, 2):
                data = options(h.proxy_port, c.lport, n)
                for i in range(0, len(data), 40):  # ~300 ms for each message
                    c.write(data[i : i + 40])
                    await asyncio.sleep(0.05)
                head = await asyncio.wait_for(c.reader.readuntil(b"\r\n\r\n"), 1.0)
                assert head.startswith(b"SIP/2.0 200")

    run(scenario())


def test_an_idle_connection_is_closed_after_the_idle_timeout(caplog):
    async def scenario():
        async with TcpHarness(_none, tcp_idle_timeout_s=0.5) as h:
            c = await h.connect()
            assert await c.ask() == 200
            closed_after = await c.closed_within(2.0)
            assert 0.48 <= closed_after < 1.2, closed_after
            assert h.core.accounting.totals["tcp_closed_idle"] == 1
            assert await (await h.connect()).ask() == 200  # a new one is welcome

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    assert _closes(caplog, "tcp") == []  # housekeeping, not an incident: no warning


def test_crlf_keepalives_keep_a_connection_open():
    async def scenario():
        async with TcpHarness(_none, tcp_idle_timeout_s=0.4) as h:
            c = await h.connect()
            started = time.monotonic()
            while time.monotonic() - started < 1.2:  # three idle timeouts
                c.write(b"\r\n\r\n")  # RFC 5626 ping
                assert await asyncio.wait_for(c.reader.readexactly(2), 1.0) == b"\r\n"  # pong
                await asyncio.sleep(0.1)
            assert await c.ask() == 200

    run(scenario())


def test_a_ping_in_two_segments_gets_its_pong():
    async def scenario():
        async with TcpHarness(_none) as h:
            c = await h.connect()
            for _ in range(2):
                c.write(b"\r\n")
                await c.writer.drain()
                await asyncio.sleep(0.05)  # two reads on the proxy's side
                c.write(b"\r\n")
                assert await asyncio.wait_for(c.reader.readexactly(2), 1.0) == b"\r\n"  # pong
            assert await c.ask() == 200

    run(scenario())


def test_an_oversized_message_closes_its_connection_with_a_log_line(caplog):
    async def scenario():
        async with TcpHarness(_none) as h:
            endless = await h.connect()
            endless.write(b"OPTIONS sip:x SIP/2.0\r\nX-Pad: " + b"a" * 70000)
            await endless.closed_within(1.0)
            huge = await h.connect()
            huge.write(options(h.proxy_port, huge.lport).replace(b"Content-Length: 0", b"Content-Length: 100000"))
            await huge.closed_within(1.0)
            assert await (await h.connect()).ask() == 200

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    assert len(_closes(caplog, "no end of headers within 65535 bytes")) == 1, caplog.text
    assert len(_closes(caplog, "too large")) == 1, caplog.text


def test_an_outbound_connection_closed_idle_is_opened_again_for_the_dialog():
    async def scenario():
        async with TcpHarness(_tcp_server, tcp_idle_timeout_s=0.4) as h:
            port = h.dest_ports[0]
            uas = await TcpUas(port).start()
            try:
                h.invite(b"tcp-1")
                inv = await uas.recv()
                assert inv.method == b"INVITE"
                ok = await h.uac.recv()
                assert ok.code == 200
                routes = ok.get_all(b"record-route")
                target = b"sip:127.0.0.1:%d;transport=tcp" % port
                h.send(request(b"ACK", h.uac_port, h.proxy_port, b"tcp-1", to_tag=b"uas", routes=routes, uri=target))
                assert (await uas.recv()).method == b"ACK"
                await asyncio.wait_for(uas.eof.wait(), 2.0)  # the proxy closed its idle connection
                h.send(request(b"BYE", h.uac_port, h.proxy_port, b"tcp-1", cseq=2, to_tag=b"uas", routes=routes, uri=target))
                assert (await uas.recv()).method == b"BYE"
                bye_ok = await h.uac.recv()
                assert bye_ok.code == 200 and bye_ok.cseq[1] == b"BYE"
                assert uas.connections == 2
                assert h.suspects == []  # our own close says nothing about the server
            finally:
                uas.close()

    run(scenario())
