"""Past what it can carry the proxy sheds new INVITEs (503 + Retry-After) while the calls
it accepted complete, and it never blames a destination for its own lateness."""

import asyncio
import logging
import socket
import time

from proxy.overload import OverloadGuard
from proxy.tests.harness import Harness, dest, request, run
from proxy.timers import TimerWheel


def _two(ports):
    return [dest(1, ports[0], priority=10), dest(2, ports[1], priority=5)], ports[:2]


async def _until(predicate, within=6.0):
    end = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_it_sheds_a_new_invite_while_a_bye_still_flows(caplog):
    async def scenario():
        async with Harness(_two) as h:
            a = h.dest_ports[0]
            routes = await h.call_up(b"up-1", a)
            guard = h.core.overload
            guard.injected = 10.0  # the test hook: as if requests waited 10 s before we read them
            await _until(lambda: guard.shedding and guard.admit == 0.0)

            h.invite(b"new-1")
            resp = await h.uac.recv()
            assert resp.code == 503 and resp.call_id == b"new-1"
            assert resp.get(b"retry-after") == b"5"
            h.send(request(b"ACK", h.uac_port, h.proxy_port, b"new-1", to_tag=resp.to_tag))
            await h.uas[a].silent(0.2)  # neither the INVITE nor the ACK for its 503 went anywhere
            await h.uas[h.dest_ports[1]].silent(0.05)

            bye = request(
                b"BYE", h.uac_port, h.proxy_port, b"up-1", cseq=2, to_tag=b"uas", routes=routes, uri=b"sip:127.0.0.1:%d" % a
            )
            h.send(bye)
            got = await h.uas[a].recv()
            assert got.method == b"BYE" and got.call_id == b"up-1"
            h.uas[a].answer(got, 200, b"OK")
            ok = await h.uac.recv()
            assert ok.code == 200 and ok.cseq[1] == b"BYE"

            totals = h.core.accounting.totals
            assert totals["shed"] == 1 and totals["sent_503"] == 1
            other = h.core.carriers.snapshot(h.core.loop.time())["other"]  # a shed INVITE is a call its carrier lost
            assert (other["calls"], other["answered"], other["failed"]["5xx"]) == (2, 1, 1)
            assert h.suspects == []
            assert all(hl.state != "suspect" for hl in h.core.health.values())

    with caplog.at_level(logging.WARNING, logger="proxy.overload"):
        run(scenario())
    starts = [r for r in caplog.records if r.name == "proxy.overload" and "shedding" in r.getMessage()]
    assert len(starts) == 1  # one line per episode, not one per INVITE


def test_it_stops_shedding_once_the_lag_has_stayed_low(caplog):
    async def scenario():
        async with Harness(_two) as h:
            a = h.dest_ports[0]
            guard = h.core.overload
            guard.injected = 1.0
            await _until(lambda: guard.shedding)
            guard.injected = 0.0
            # hysteresis: admission climbs back first, the episode ends only after a calm spell
            await _until(lambda: guard.admit == 1.0)
            assert guard.shedding
            await _until(lambda: not guard.shedding)
            h.invite(b"after-1")
            inv = await h.uas[a].recv()
            assert inv.call_id == b"after-1"
            h.uas[a].answer(inv, 200, b"OK")
            assert (await h.uac.recv()).code == 200

    with caplog.at_level(logging.WARNING, logger="proxy.overload"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "proxy.overload"]
    assert len(lines) == 2 and "shedding" in lines[0] and "overload over" in lines[1]
    assert "peak lag" in lines[1] and "lag now" in lines[1]


def test_it_admits_a_share_of_new_calls_when_only_slightly_late():
    async def scenario():
        loop = asyncio.get_running_loop()
        guard = OverloadGuard(TimerWheel(loop), time.time)
        guard.lag = 0.25  # just past the 200 ms mark: cut to 70 %, not to nothing
        guard.update(loop.time())
        assert not guard.shedding and guard.admit == 1.0  # one late sample is a stall, not overload
        guard.update(loop.time() + 0.02)
        assert guard.shedding and 0.6 < guard.admit < 0.8
        admitted = sum(guard.admit_invite() for _ in range(1000))
        assert 650 <= admitted <= 750 and guard.shed == 1000 - admitted

    run(scenario())


def test_it_measures_how_long_a_datagram_has_waited_unread():
    async def scenario():
        loop = asyncio.get_running_loop()
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.bind(("127.0.0.1", 0))
            wheel = TimerWheel(loop)
            wheel.start()
            guard = OverloadGuard(wheel, time.time)
            guard.watch(rx)
            guard.start()
            assert guard.socks, "SO_TIMESTAMPNS not available"
            tx.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", rx.getsockname())
            # nobody reads rx: the datagram ages in the kernel queue and the guard sees it
            await _until(lambda: guard.queue_delay >= 0.25)
            assert guard.shedding and guard.admit < 1.0
            rx.recv(100)
            await _until(lambda: guard.queue_delay == 0.0 and guard.lag < 0.05)
            guard.stop()
            wheel.stop()
        finally:
            rx.close()
            tx.close()

    run(scenario())


def test_a_reply_waiting_unread_keeps_the_trying_timer_from_blaming_the_server():
    async def scenario():
        async with Harness(_two, trying_timeout_ms=200) as h:
            a = h.dest_ports[0]
            h.invite(b"queued-1")
            inv = await h.uas[a].recv()
            # the destination's 180 sits unread in its socket while our loop is stuck
            h.core.loop.remove_reader(h.core.udp_dests[("127.0.0.1", a)].sock.fileno())
            h.uas[a].answer(inv, 180, b"Ringing")
            await asyncio.sleep(0.4)  # let the trying timeout pass with the 180 still queued
            assert h.suspects == []
            ud = h.core.udp_dests[("127.0.0.1", a)]
            h.core.loop.add_reader(ud.sock.fileno(), ud._readable)
            assert (await h.uac.recv()).code == 180
            assert h.suspects == []
            await h.uas[h.dest_ports[1]].silent(0.1)

    run(scenario())


def test_one_stall_between_calm_samples_sheds_nothing():
    async def scenario():
        loop = asyncio.get_running_loop()
        guard = OverloadGuard(TimerWheel(loop), time.time)
        now = loop.time()
        for i, lag in enumerate((0.0, 0.4, 0.0, 0.0, 0.3, 0.0)):  # a busy host: the loop ran late twice
            guard.lag = lag
            guard.update(now + 0.02 * i)
        assert not guard.shedding and guard.admit == 1.0

    run(scenario())


def test_a_backlog_left_by_a_stall_and_drained_sheds_nothing():
    async def scenario():
        loop = asyncio.get_running_loop()
        guard = OverloadGuard(TimerWheel(loop), time.time)
        now = loop.time()
        for i, lag in enumerate((0.0, 1.4, 1.1, 0.7, 0.3, 0.0)):  # the host stopped us 1.4 s; we catch up
            guard.lag = lag
            guard.update(now + 0.02 * i)
        assert not guard.shedding and guard.admit == 1.0

    run(scenario())


def test_a_backlog_that_keeps_its_age_is_overload():
    async def scenario():
        loop = asyncio.get_running_loop()
        guard = OverloadGuard(TimerWheel(loop), time.time)
        now = loop.time()
        for i, lag in enumerate((0.0, 0.3, 0.29, 0.31)):
            guard.lag = lag
            guard.update(now + 0.02 * i)
        assert guard.shedding and guard.admit < 1.0

    run(scenario())
