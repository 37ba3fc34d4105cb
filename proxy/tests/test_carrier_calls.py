"""Calls through a real proxy on UDP are counted for the carrier whose source rule they matched, by
the final response the caller got; and the counts reach the heartbeat and lb:nodecarriers:<name>."""

import asyncio
import json
from dataclasses import replace

from lbcore.contract import SourceRuleSpec, decode_node, node_carriers_key, node_key
from proxy.core import Proxy
from proxy.follower import Follower
from proxy.tests.harness import Harness, dest, request, run, table
from proxy.tests.test_table_follower import _until


def _two(ports):
    return [dest(1, ports[0], priority=10), dest(2, ports[1], priority=5)], ports[:2]


def _with_carrier(h, network):
    # on a busy machine neither a server that sends no 100 Trying nor a late loop may change the outcome
    t = table(_two(h.dest_ports)[0], trying_timeout_ms=30000, overload_lag_ms=60000)
    h.core.apply_table(replace(t, source_rules=(SourceRuleSpec(network=network, setid=1, carrier="Carrier A"),)))


async def _final(h, call_id, code, reason):
    """One INVITE answered `code` by the first server (a 503 is failed over to the second, which says 503 too)."""
    h.invite(call_id)
    a, b = h.dest_ports[:2]
    inv = await h.uas[a].recv()
    h.uas[a].answer(inv, code, reason)
    if code >= 300:
        assert (await h.uas[a].recv()).method == b"ACK"  # the proxy's, hop by hop
    if code == 503:
        inv = await h.uas[b].recv()
        h.uas[b].answer(inv, code, reason)
        assert (await h.uas[b].recv()).method == b"ACK"
    got = await h.uac.recv()
    assert got.code == code


def test_each_call_counts_for_its_carrier_by_the_final_response_sent():
    async def scenario():
        async with Harness(_two) as h:
            _with_carrier(h, "127.0.0.1/32")
            await _final(h, b"c-200", 200, b"OK")
            await _final(h, b"c-486", 486, b"Busy Here")
            h.invite(b"c-cancel")
            inv = await h.uas[h.dest_ports[0]].recv()
            h.uas[h.dest_ports[0]].answer(inv, 180, b"Ringing")
            assert (await h.uac.recv()).code == 180
            h.send(request(b"CANCEL", h.uac_port, h.proxy_port, b"c-cancel", branch=b"z9hG4bK-c-cancel-1INVITE"))
            assert (await h.uac.recv()).code == 200  # the CANCEL's
            assert (await h.uas[h.dest_ports[0]].recv()).method == b"CANCEL"
            h.uas[h.dest_ports[0]].answer(inv, 487, b"Request Terminated")
            assert (await h.uac.recv()).code == 487
            assert (await h.uas[h.dest_ports[0]].recv()).method == b"ACK"
            await _final(h, b"c-503", 503, b"Service Unavailable")
            h.invite(b"c-none")  # both servers are suspect now: our own 503
            assert (await h.uac.recv()).code == 503
            f = h.core.carriers.snapshot(h.core.loop.time())
            assert set(f) == {"Carrier A"}  # nothing counted as "other"
            a = f["Carrier A"]
            assert (a["calls"], a["answered"], a["canceled"]) == (5, 1, 1)
            assert a["failed"] == {"4xx": 1, "5xx": 2, "6xx": 0, "timeout": 0}
            assert sum(a["setup_buckets"]) == 4 and a["cps"] > 0

    run(scenario())


def test_a_source_no_rule_matches_is_other():
    async def scenario():
        async with Harness(_two) as h:
            _with_carrier(h, "127.0.0.99/32")
            await _final(h, b"o-200", 200, b"OK")
            f = h.core.carriers.snapshot(h.core.loop.time())
            assert set(f) == {"other"} and f["other"]["answered"] == 1

    run(scenario())


def test_the_heartbeat_and_the_kept_record_carry_the_carrier_figures(redis, redis_url):
    async def scenario():
        loop = asyncio.get_running_loop()
        core = Proxy(loop, "t-carriers")
        core.carriers.final("Carrier A", 200, 0.2, loop.time())
        follower = Follower(core, redis_url, "t-carriers", ["udp:127.0.0.1:5060"])
        tasks = [loop.create_task(follower.run()), loop.create_task(follower.heartbeat())]
        await _until(lambda: redis.get(node_key("t-carriers")) is not None, "a heartbeat")
        node = decode_node(redis.get(node_key("t-carriers")))
        assert node["carriers"]["Carrier A"]["answered"] == 1
        kept = json.loads(redis.get(node_carriers_key("t-carriers")))
        assert kept["started"] == node["started"] and kept["carriers"] == node["carriers"]
        assert redis.ttl(node_carriers_key("t-carriers")) > 3600
        follower.stop()  # a cancel alone can be eaten inside redis-py
        for t in tasks:
            t.cancel()

    run(scenario())


def test_a_restarted_node_names_the_process_it_replaced(redis, redis_url):
    from lbcore.contract import encode_node_carriers

    redis.set(node_carriers_key("t-again"), encode_node_carriers("t-again", started=1000.0, carriers={}, written=1900.0))

    async def scenario():
        loop = asyncio.get_running_loop()
        follower = Follower(Proxy(loop, "t-again"), redis_url, "t-again", ["udp:127.0.0.1:5060"])
        tasks = [loop.create_task(follower.run()), loop.create_task(follower.heartbeat())]
        await _until(lambda: json.loads(redis.get(node_carriers_key("t-again")))["started"] != 1000.0, "our own record")
        kept = json.loads(redis.get(node_carriers_key("t-again")))
        assert kept["previous"] == {"started": 1000.0, "written": 1900.0}
        follower.stop()  # a cancel alone can be eaten inside redis-py
        for t in tasks:
            t.cancel()

    run(scenario())
