"""Every dispatched INVITE leaves a call record in lb:calllog: the servers tried with their codes
and timings, the final code, setup time, and at BYE who hung up. Recording only appends a tuple on
the message path; the flusher encodes and sends a pipeline, bounded in memory when Redis is away."""

import asyncio

import pytest
import redis.asyncio as aioredis

from lbcore import calls
from proxy import calllog
from proxy.tests.harness import PORT_BASE, Harness, dest, request, run


def _two(ports):
    return [dest(1, ports[0], priority=10, server_id=11), dest(2, ports[1], priority=5, server_id=12)], ports[:2]


def _entries(redis):
    return [calls.decode_entry(f) for _, f in redis.xrange(calls.CALL_LOG_KEY)]


async def _bye(h, call_id, routes, uas_port):
    bye = request(
        b"BYE", h.uac_port, h.proxy_port, call_id, cseq=2, to_tag=b"uas", routes=routes, uri=b"sip:127.0.0.1:%d" % uas_port
    )
    h.send(bye)
    got = await h.uas[uas_port].recv()
    assert got.method == b"BYE"
    h.uas[uas_port].answer(got, 200, b"OK")
    assert (await h.uac.recv()).code == 200


def test_a_failed_over_call_is_recorded_with_both_servers_and_its_end(redis, redis_url):
    async def scenario():
        async with Harness(_two) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"rec-1")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 503, b"Service Unavailable")
            await h.uas[a].recv()  # our ACK
            inv2 = await h.uas[b].recv()
            assert redis.exists(calls.CALL_LOG_KEY) == 0  # nothing written on the message path
            h.uas[b].answer(inv2, 200, b"OK")
            ok = await h.uac.recv()
            routes = ok.get_all(b"record-route")
            await _bye(h, b"rec-1", routes, b)
            client = aioredis.from_url(redis_url)
            await h.core.calllog.flush(client)
            await client.aclose()

    run(scenario())
    setup, end = _entries(redis)
    assert setup["t"] == "setup" and setup["call_id"] == "rec-1"
    assert setup["final_code"] == 200 and setup["from_user"] == "caller" and setup["to_user"] == "service"
    assert setup["carrier"] == "other" and setup["why"] == "default" and setup["set"] == 1
    tried = setup["attempts"]
    assert [(t["destination_id"], t["server_id"], t["code"]) for t in tried] == [(1, 11, 503), (2, 12, 200)]
    assert all(t["ms"] >= 0 for t in tried) and int(setup["setup_ms"]) >= tried[0]["ms"]
    assert end["t"] == "end" and end["call_id"] == "rec-1" and end["btag"] == setup["ftag"] == "caller"


def test_a_server_that_never_answers_is_recorded_with_why(redis, redis_url):
    async def scenario():
        async with Harness(lambda p: ([dest(1, p[0], priority=10), dest(2, p[1], priority=5)], [p[1]])) as h:
            h.invite(b"rec-dead")
            inv = await h.uas[h.dest_ports[1]].recv(timeout=5)
            h.uas[h.dest_ports[1]].answer(inv, 486, b"Busy Here")
            assert (await h.uac.recv()).code == 486
            client = aioredis.from_url(redis_url)
            await h.core.calllog.flush(client)
            await client.aclose()

    run(scenario())
    (setup,) = _entries(redis)
    first, second = setup["attempts"]
    assert first["code"] is None and first["reason"]  # no reply: the reason says why
    assert second["code"] == 486 and setup["final_code"] == 486


def test_the_queue_has_a_cap_and_counts_what_it_drops(monkeypatch):
    monkeypatch.setattr(calllog, "QUEUE_MAX", 3)

    async def scenario():
        async with Harness(_two) as h:
            log = h.core.calllog
            for i in range(5):
                log.ended(b"c%d" % i, None)
            assert [item[0] for item in log.queue] == [b"c2", b"c3", b"c4"]  # the oldest went
            assert log.dropped == 2 and h.core.accounting.totals["call_records_dropped"] == 2

    run(scenario())


def test_with_redis_away_records_wait_bounded_then_go_out_in_one_batch(monkeypatch, redis, redis_url):
    monkeypatch.setattr(calllog, "PENDING_MAX", 4)

    async def scenario():
        async with Harness(_two) as h:
            log = h.core.calllog
            for i in range(6):
                log.ended(b"w%d" % i, None)
            nowhere = aioredis.from_url(f"redis://127.0.0.1:{PORT_BASE + 99}/1", socket_connect_timeout=1)
            with pytest.raises((OSError, aioredis.ConnectionError)):
                await log.flush(nowhere)
            await nowhere.aclose()
            assert len(log.pending) == 4 and log.dropped == 2
            client = aioredis.from_url(redis_url)
            await log.flush(client)
            await client.aclose()
            assert not log.pending and log.written == 4

    run(scenario())
    assert [e["call_id"] for e in _entries(redis)] == ["w2", "w3", "w4", "w5"]
    assert {e["by"] for e in _entries(redis)} == {"expired"}


def test_call_log_max_zero_turns_recording_off(redis, redis_url):
    async def scenario():
        async with Harness(_two, call_log_max=0) as h:
            client = aioredis.from_url(redis_url)
            await h.core.calllog.flush(client)  # the flusher reads the setting from the table
            h.invite(b"off-1")
            inv = await h.uas[h.dest_ports[0]].recv()
            h.uas[h.dest_ports[0]].answer(inv, 486, b"Busy Here")
            assert (await h.uac.recv()).code == 486
            assert not h.core.calllog.queue
            await h.core.calllog.flush(client)
            await client.aclose()

    run(scenario())
    assert redis.exists(calls.CALL_LOG_KEY) == 0


def test_wire_text_is_capped_and_stripped_of_control_characters():
    assert calls.clean(b"a\x00b\r\nc" + b"x" * 500, 10) == "a?b??cxxxx"
    assert calls.user_part(b"sip:+1555\x07@example.com;user=phone") == "+1555?"
    assert calls.user_part(b"tel:+15551234;phone-context=x") == "+15551234"
    assert calls.user_part(b"sip:example.com") == ""


def test_the_flusher_runs_until_stopped(redis, redis_url):
    async def scenario():
        async with Harness(_two) as h:
            log = h.core.calllog
            log.ended(b"bg-1", None)
            task = asyncio.create_task(log.run(lambda: aioredis.from_url(redis_url)))
            for _ in range(600):  # bounded: the flusher wakes every FLUSH_SECONDS
                if log.written:
                    break
                await asyncio.sleep(calllog.FLUSH_SECONDS)
            log.stop()
            await task

    run(scenario())
    assert [e["call_id"] for e in _entries(redis)] == ["bg-1"]


def test_an_idle_flusher_sleeps_until_a_record_comes_then_writes_it_within_a_flush(redis, redis_url):
    """It used to wake every FLUSH_SECONDS with nothing to write: most of an idle proxy's wake-ups
    after the overload sample. Now it waits for the message path's first record."""

    async def scenario():
        async with Harness(_two) as h:
            log = h.core.calllog
            flushes = 0
            real_flush = log.flush

            async def counting_flush(client):
                nonlocal flushes
                flushes += 1
                await real_flush(client)

            log.flush = counting_flush
            task = asyncio.create_task(log.run(lambda: aioredis.from_url(redis_url)))
            await asyncio.sleep(10 * calllog.FLUSH_SECONDS)
            assert flushes == 1, f"{flushes} flushes in 10 x FLUSH_SECONDS with nothing queued"
            queued_at = asyncio.get_running_loop().time()
            log.ended(b"idle-1", None)
            while not log.written:
                await log.wake.wait()  # set again by the record; the write follows within a flush
                await asyncio.sleep(calllog.FLUSH_SECONDS / 10)
                assert asyncio.get_running_loop().time() - queued_at < 5, "the record was never written"
            log.stop()
            await task
            return asyncio.get_running_loop().time() - queued_at

    took = run(scenario())
    assert [e["call_id"] for e in _entries(redis)] == ["idle-1"]
    assert took < 1.0  # FLUSH_SECONDS and a Redis round trip, with room for a loaded host


def test_a_cancelled_call_is_recorded_487_and_cancelled(redis, redis_url):
    async def scenario():
        async with Harness(_two) as h:
            a = h.dest_ports[0]
            h.invite(b"rec-cancel")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 180, b"Ringing")
            assert (await h.uac.recv()).code == 180
            h.send(request(b"CANCEL", h.uac_port, h.proxy_port, b"rec-cancel", branch=b"z9hG4bK-rec-cancel-1INVITE"))
            assert (await h.uac.recv()).code == 200
            cancel = await h.uas[a].recv()
            h.uas[a].answer(cancel, 200, b"OK")
            h.uas[a].answer(inv, 487, b"Request Terminated")
            assert (await h.uac.recv()).code == 487
            client = aioredis.from_url(redis_url)
            await h.core.calllog.flush(client)
            await client.aclose()

    run(scenario())
    (setup,) = _entries(redis)
    assert setup["final_code"] == 487 and setup["canceled"] is True
    assert [(t["destination_id"], t["code"]) for t in setup["attempts"]] == [(1, 487)]
