"""Inbound TCP connections are capped in total (under the open file limit) and per untrusted
address; a refused client is closed at once and the refusal is logged, a few lines a second.
A peer that stops reading cannot make the proxy queue its replies without end."""

import asyncio
import logging
import socket
import time

import pytest

from proxy import transport
from proxy.tests.harness import run
from proxy.tests.tcp_support import TcpHarness, options
from proxy.transport import LIMIT_LOGS_PER_SECOND, TcpLimits, connection_cap


def _none(ports):
    return [], []


def _refusals(caplog, what):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "proxy.transport" and "refused" in r.getMessage() and what in r.getMessage()
    ]


async def _until(predicate, within=3.0):
    end = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_it_refuses_a_connection_past_the_total_cap_and_logs_it(caplog):
    async def scenario():
        async with TcpHarness(_none, tcp_max_connections=5) as h:
            held = [await h.connect() for _ in range(5)]
            for c in held:
                assert await c.ask() == 200
            extra = await h.connect()
            assert await extra.closed_within(1.0) < 1.0
            for c in held:  # the ones admitted keep working
                assert await c.ask() == 200
            held[0].close()
            await _until(lambda: h.core.pool.inbound == 4)
            again = await h.connect()
            assert await again.ask() == 200

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    lines = _refusals(caplog, "tcp_max_connections 5")
    assert len(lines) == 1, caplog.text
    assert lines[0].startswith("tcp connection from 127.0.0.1:")


def test_it_refuses_an_untrusted_address_past_its_own_cap(caplog):
    async def scenario():
        async with TcpHarness(_none, trusted_networks=["10.0.0.0/8"], tcp_max_per_ip=3) as h:
            held = [await h.connect() for _ in range(3)]
            for c in held:
                assert await c.ask() >= 400  # an answer, so admitted (untrusted: refused service)
            fourth = await h.connect()
            await fourth.closed_within(1.0)
            assert h.core.accounting.snapshot()[0]["tcp_refused_per_ip"] == 1  # reaches the heartbeat
            assert await held[2].ask() >= 400

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    lines = _refusals(caplog, "tcp_max_per_ip")
    assert len(lines) == 1 and "3 connections from this address" in lines[0], caplog.text


def test_a_trusted_address_is_not_held_to_the_per_address_cap(caplog):
    async def scenario():
        async with TcpHarness(_none, tcp_max_per_ip=3) as h:  # 127.0.0.0/8 is trusted
            held = [await h.connect() for _ in range(6)]
            for c in held:
                assert await c.ask() == 200

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    assert _refusals(caplog, "") == []


def test_the_last_tenth_of_the_cap_is_kept_for_trusted_peers():
    async def scenario():
        # 127.0.0.2 is a carrier; 127.0.0.1 is anyone else
        async with TcpHarness(_none, trusted_networks=["127.0.0.2/32"], tcp_max_connections=10, tcp_max_per_ip=100) as h:
            for _ in range(9):
                await h.connect()
            await _until(lambda: h.core.pool.inbound == 9)
            stranger = await h.connect()
            await stranger.closed_within(1.0)
            carrier = await h.connect("127.0.0.2")
            assert await carrier.ask() == 200
            past = await h.connect("127.0.0.2")
            await past.closed_within(1.0)  # the total cap holds for trusted peers too

    run(scenario())


def test_a_flood_of_refusals_is_logged_a_few_lines_a_second(caplog):
    async def scenario():
        async with TcpHarness(_none, tcp_max_connections=1) as h:
            first = await h.connect()
            assert await first.ask() == 200
            flood = [await h.connect() for _ in range(LIMIT_LOGS_PER_SECOND + 10)]
            for c in flood:
                await c.closed_within(1.0)
            # the count of what was not logged comes from the sweep once the second is over
            await _until(lambda: "more tcp connections refused or closed" in caplog.text, within=3.0)
            assert await first.ask() == 200

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    assert len(_refusals(caplog, "tcp_max_connections")) == LIMIT_LOGS_PER_SECOND
    assert "10 more tcp connections refused or closed" in caplog.text


@pytest.mark.parametrize(
    "wanted, nofile, cap",
    [(4096, 1024, (768, True)), (100, 1024, (100, False)), (4096, 1048576, (4096, False)), (10, 1, (1, True))],
)
def test_the_total_cap_stays_under_the_open_file_limit(wanted, nofile, cap):
    assert connection_cap(wanted, nofile) == cap


def test_limits_come_from_the_table_settings_with_defaults():
    limits = TcpLimits(
        {"tcp_idle_timeout_s": 30, "tcp_message_timeout_ms": 2000, "tcp_max_connections": 100, "tcp_max_per_ip": 8},
        nofile=1 << 20,
    )
    assert (limits.idle, limits.message, limits.max_connections, limits.untrusted_max, limits.per_ip) == (30, 2.0, 100, 90, 8)
    assert limits.period == 0.5
    default = TcpLimits({}, nofile=1 << 20)
    assert (default.idle, default.message, default.max_connections, default.per_ip, default.period) == (300, 10.0, 4096, 64, 1.0)


def test_a_peer_that_does_not_read_is_dropped_before_its_replies_fill_memory(caplog, monkeypatch):
    monkeypatch.setattr(transport, "WRITE_BUFFER_MAX", 64 << 10)  # 1 MiB in production: same path, faster

    async def scenario():
        async with TcpHarness(_none) as h:
            loop = asyncio.get_running_loop()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never reads
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", h.proxy_port))
            lport = sock.getsockname()[1]
            try:
                for n in range(0, 60000, 200):
                    batch = b"".join(options(h.proxy_port, lport, n + i) for i in range(200))
                    try:
                        await asyncio.wait_for(loop.sock_sendall(sock, batch), 2.0)
                    except (ConnectionResetError, BrokenPipeError):
                        break
                    if h.core.accounting.totals["tcp_closed_write_stalled"]:
                        break
                assert h.core.accounting.totals["tcp_closed_write_stalled"] == 1
                await _until(lambda: not h.core.pool.live)
            finally:
                sock.close()
            good = await h.connect()
            assert await good.ask() == 200

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(scenario())
    assert len([r for r in caplog.records if "does not read" in r.getMessage()]) == 1
