"""What a node's heartbeat says beyond its counters: when it applied which table (so the panel
can show how long a change took to reach it) and whether it holds the floating address."""

import asyncio
import time

from lbcore.contract import EVENTS_CHANNEL, TABLE_KEY, decode_node, encode_table, encode_vrrp, node_key, table_event, vrrp_key
from proxy.core import Proxy
from proxy.follower import Follower
from proxy.resolver import address_is_here
from proxy.tests.harness import run
from proxy.tests.test_table_follower import _until


def _publish(r, version, published_at):
    r.set(TABLE_KEY, encode_table(version, [], [], {}, published_at=published_at))
    r.publish(EVENTS_CHANNEL, table_event(version))


def _beating(redis_url, name, advertise=None):
    loop = asyncio.get_running_loop()
    core = Proxy(loop, name)
    follower = Follower(core, redis_url, name, ["udp:127.0.0.1:5060"], advertise)
    return core, [loop.create_task(follower.run()), loop.create_task(follower.heartbeat())]


def _node(redis, name):
    raw = redis.get(node_key(name))
    return decode_node(raw) if raw is not None else {}


def test_the_heartbeat_says_when_this_node_applied_which_table(redis, redis_url):
    first = round(time.time(), 3)
    _publish(redis, 1, first)

    async def scenario():
        core, tasks = _beating(redis_url, "t-applied")
        await _until(lambda: _node(redis, "t-applied").get("table_version") == 1, "version 1 in the heartbeat")
        node = _node(redis, "t-applied")
        assert node["table_published_at"] == first
        assert first <= node["table_applied_at"] == core.table_applied_at
        second = round(time.time(), 3)
        _publish(redis, 2, second)
        await _until(lambda: _node(redis, "t-applied").get("table_version") == 2, "version 2 in the heartbeat", 4)
        node = _node(redis, "t-applied")
        assert node["table_published_at"] == second and node["table_applied_at"] >= second
        for t in tasks:
            t.cancel()

    run(scenario())


def test_without_a_floating_address_it_holds_none(redis, redis_url):
    async def scenario():
        _, tasks = _beating(redis_url, "t-plain")
        await _until(lambda: "holds_address" in _node(redis, "t-plain"), "a heartbeat")
        node = _node(redis, "t-plain")
        assert node["advertise"] is None and node["holds_address"] is None
        for t in tasks:
            t.cancel()

    run(scenario())


def test_on_loopback_it_cannot_tell_until_keepalived_says(redis, redis_url):
    """Every process on a host has all of 127/8: a bind there proves nothing, so it says unknown."""

    async def scenario():
        _, tasks = _beating(redis_url, "t-vip", advertise=("127.0.0.9", 5060))
        await _until(lambda: "holds_address" in _node(redis, "t-vip"), "a heartbeat")
        node = _node(redis, "t-vip")
        assert node["advertise"] == "127.0.0.9:5060" and node["holds_address"] is None
        redis.set(vrrp_key("t-vip"), encode_vrrp("t-vip", "master"))
        await _until(lambda: _node(redis, "t-vip").get("holds_address") is True, "keepalived's master")
        redis.set(vrrp_key("t-vip"), encode_vrrp("t-vip", "backup"))
        await _until(lambda: _node(redis, "t-vip").get("holds_address") is False, "keepalived's backup")
        for t in tasks:
            t.cancel()

    run(scenario())


def test_a_node_bound_to_the_floating_address_takes_keepalived_s_word(redis, redis_url):
    """No --advertise, listening on the floating address itself (ip_nonlocal_bind): the report counts."""

    async def scenario():
        loop = asyncio.get_running_loop()
        core = Proxy(loop, "t-bound")
        core.listeners.append(type("Lis", (), {"host": "127.0.0.9", "port": 5060})())
        follower = Follower(core, redis_url, "t-bound", ["udp:127.0.0.9:5060"])
        tasks = [loop.create_task(follower.run()), loop.create_task(follower.heartbeat())]
        redis.set(vrrp_key("t-bound"), encode_vrrp("t-bound", "master"))
        await _until(lambda: _node(redis, "t-bound").get("holds_address") is True, "keepalived's master")
        assert _node(redis, "t-bound")["advertise"] is None
        for t in tasks:
            t.cancel()

    run(scenario())


def test_a_bind_says_whether_an_address_is_on_this_host():
    assert address_is_here("127.0.0.9") is None
    assert address_is_here("vip.example.com") is None
    assert address_is_here("192.0.2.77") in (False, None)  # TEST-NET-1: never ours (None under ip_nonlocal_bind)


def test_a_restarted_node_clears_the_dns_failures_its_predecessor_left(redis, redis_url):
    # lb:dnsfail:<node> outlives a dead proxy on purpose (the panel shows it as unknown); the next
    # process under that name, whose names resolve, must not leave it standing as its own word.
    from lbcore.contract import dns_key, encode_dns_warning

    redis.hset(dns_key("t-dns-restart"), "1", encode_dns_warning("t-dns-restart", "sip:gone.test", "NXDOMAIN", 1.0, []))

    async def scenario():
        _, tasks = _beating(redis_url, "t-dns-restart")
        await _until(lambda: "holds_address" in _node(redis, "t-dns-restart"), "a heartbeat")
        await _until(lambda: not redis.exists(dns_key("t-dns-restart")), "the predecessor's DNS failures cleared")
        for t in tasks:
            t.cancel()

    run(scenario())
