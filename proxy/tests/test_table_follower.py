"""The proxy's copy of lb:table / lb:health follows Redis, and survives losing it."""

import asyncio
import time

from lbcore.contract import (
    EVENTS_CHANNEL,
    HEALTH_KEY,
    SUSPECT,
    TABLE_KEY,
    UP,
    Health,
    decode_health,
    decode_node,
    encode_health,
    encode_node,
    encode_table,
    health_event,
    node_key,
    table_event,
)
from proxy.core import Proxy
from proxy.follower import Follower
from proxy.tests.harness import run


def _publish(r, version, port=5081):
    dest = {"id": 1, "setid": 1, "uri": f"sip:127.0.0.1:{port}", "host": "127.0.0.1", "port": port, "transport": "tcp"}
    r.set(TABLE_KEY, encode_table(version, [{"setid": 1, "name": "out", "algorithm": 4, "destinations": [dest]}], [], {}))
    r.publish(EVENTS_CHANNEL, table_event(version))


async def _until(pred, what, deadline=5.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never saw {what}")


def _start(redis_url, name="t-follower"):
    core = Proxy(asyncio.get_running_loop(), name)
    follower = Follower(core, redis_url, name, ["udp:127.0.0.1:0"])
    core.on_suspect.append(follower.publish_suspect)
    return core, follower, asyncio.get_running_loop().create_task(follower.run())


def test_it_loads_the_table_and_follows_events(redis, redis_url):
    _publish(redis, 1)
    redis.hset(HEALTH_KEY, "1", encode_health(Health(state=UP, rtt_ms=3.0)))

    async def scenario():
        core, follower, task = _start(redis_url)
        await _until(lambda: core.view.version == 1 and 1 in core.health, "table 1 and its health")
        _publish(redis, 2, port=5082)
        await _until(lambda: core.view.version == 2, "table 2")
        assert core.view.addr_of[1] == ("127.0.0.1", 5082)
        down = Health(state="down", fails=3)
        redis.hset(HEALTH_KEY, "1", encode_health(down))
        redis.publish(EVENTS_CHANNEL, health_event(1))
        await _until(lambda: core.health[1].state == "down", "the health event")
        task.cancel()

    run(scenario())


def test_it_writes_a_suspect_mark_to_redis(redis, redis_url):
    _publish(redis, 1)

    async def scenario():
        core, follower, task = _start(redis_url)
        await _until(lambda: follower.connected and core.view.version == 1, "the table")
        core.mark_suspect(core.view.table.sets[1].destinations[0], 503, "replied 503", b"c1")
        await _until(lambda: redis.hget(HEALTH_KEY, "1") is not None, "the suspect mark in Redis")
        task.cancel()

    run(scenario())
    health = decode_health(redis.hget(HEALTH_KEY, "1"))
    assert (health.state, health.code) == (SUSPECT, 503)


def test_it_reloads_in_full_after_losing_redis(redis, redis_url):
    _publish(redis, 1)

    async def scenario():
        core, follower, task = _start(redis_url, "t-reconnect")
        await _until(lambda: follower.connected and core.view.version == 1, "the table")
        # the connection drops; a change is published while nobody listens
        for client in redis.client_list():
            if client.get("name") == "lbpanel-proxy:t-reconnect":
                redis.client_kill_filter(_id=client["id"])
        redis.set(TABLE_KEY, redis.get(TABLE_KEY).replace(b'"version":1', b'"version":7'))
        assert core.view.version == 1  # still routing from the last table
        await _until(lambda: core.view.version == 7, "the table reloaded after reconnecting")
        task.cancel()

    run(scenario())


def test_it_serves_with_an_empty_table_when_redis_is_absent():
    async def scenario():
        core, follower, task = _start("redis://127.0.0.1:1/0")
        await asyncio.wait_for(follower.first_attempt.wait(), 5)
        assert not follower.connected and core.view.version == 0
        task.cancel()

    run(scenario())


def test_it_beats_a_heartbeat_and_reads_the_other_nodes_loads(redis, redis_url):
    _publish(redis, 1)
    other = encode_node("other", table_version=1, started=0, pid=1, listen=[], totals={}, destinations={1: {"active": 4}})
    redis.set(node_key("other"), other, ex=30)

    async def scenario():
        core, follower, task = _start(redis_url, "t-beat")
        await _until(lambda: core.view.version == 1, "the table")
        beat = asyncio.get_running_loop().create_task(follower.heartbeat())
        await _until(lambda: redis.get(node_key("t-beat")) is not None, "our heartbeat")
        await _until(lambda: core.accounting.loads().get(1) == 4, "the other node's load")
        task.cancel()
        beat.cancel()

    run(scenario())
    node = decode_node(redis.get(node_key("t-beat")))
    assert node["table_version"] == 1 and "invites" in node["totals"]
    assert 0 < redis.ttl(node_key("t-beat")) <= 5
