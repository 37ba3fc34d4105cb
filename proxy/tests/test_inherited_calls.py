"""What a restarted proxy inherits from its previous process: calls it cannot count, per
destination, counted down by BYEs it cannot match to a call of its own (to or from that
destination's address, each Call-ID once), and forgotten after dialog_timeout."""

import asyncio
import time

from proxy.core import Proxy
from proxy.tests.harness import dest, run, table
from sip.message import parse_message


def _bye(call_id, ruri=b"sip:ast@127.0.0.1:5081"):
    return parse_message(
        b"BYE " + ruri + b" SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-" + call_id + b"\r\n"
        b"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\n"
        b"Call-ID: " + call_id + b"\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


def _core(**settings):
    core = Proxy(asyncio.get_running_loop(), "t-inherit")
    core.apply_table(table([dest(1, 5081), dest(2, 5082)], **settings))
    return core


def test_byes_to_or_from_a_server_count_its_inherited_calls_down_once_each():
    async def scenario():
        core = _core()
        acc = core.accounting
        acc.inherit({1: 2, 2: 1})
        acc.bye(b"old-1", _bye(b"old-1"), None, ("127.0.0.9", 5070))  # caller -> ast1 (R-URI)
        acc.bye(b"old-1", _bye(b"old-1"), None, ("127.0.0.9", 5070))  # the same BYE again: counted once
        assert acc.inherited == {1: 1, 2: 1}
        acc.bye(b"old-2", _bye(b"old-2", b"sip:caller@127.0.0.9:5070"), None, ("127.0.0.1", 5082))  # ast2 -> caller
        assert acc.inherited == {1: 1}
        acc.bye(b"old-3", _bye(b"old-3", b"sip:caller@127.0.0.9:5070"), None, ("127.0.0.7", 5070))  # nobody's
        assert acc.inherited == {1: 1}
        assert acc.loads().get(1) == 1  # algorithm 10 counts them as load meanwhile

    run(scenario())


def test_a_bye_of_our_own_call_leaves_the_inherited_ones_alone():
    async def scenario():
        acc = _core().accounting
        acc.inherit({1: 1})
        acc.dialogs[b"new-1"] = 1
        acc.dests[1].active = 1
        acc.bye(b"new-1", _bye(b"new-1"), None, ("127.0.0.9", 5070))
        assert (acc.dests[1].active, acc.inherited) == (0, {1: 1})

    run(scenario())


def test_inherited_calls_are_forgotten_after_dialog_timeout():
    async def scenario():
        acc = _core(dialog_timeout_s=60).accounting
        acc.inherit({1: 3}, now=time.time() - 59)
        acc.expire(time.time())
        assert acc.inherited == {1: 3}
        acc.expire(time.time() + 2)
        assert acc.inherited == {}

    run(scenario())


def test_the_heartbeat_inherits_the_previous_record_and_keeps_its_own(redis, redis_url):
    from lbcore.contract import decode_node, decode_node_calls, encode_node_calls, node_calls_key, node_key
    from proxy.follower import Follower

    redis.set(node_calls_key("t-inh"), encode_node_calls("t-inh", pid=1, active={1: 5}, unknown={2: 1}), ex=600)

    async def scenario():
        core = _core()
        follower = Follower(core, redis_url, "t-inh", ["udp:127.0.0.1:0"])
        beat = asyncio.get_running_loop().create_task(follower.heartbeat())
        deadline = time.monotonic() + 5
        while redis.get(node_key("t-inh")) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        follower.stop()
        await beat
        assert core.accounting.inherited == {1: 5, 2: 1}
        assert decode_node(redis.get(node_key("t-inh")))["unknown"] == {1: 5, 2: 1}
        await follower.remove_node()  # a clean stop with calls still unknown keeps the record

    run(scenario())
    assert decode_node_calls(redis.get(node_calls_key("t-inh")))["unknown"] == {1: 5, 2: 1}
    assert redis.get(node_key("t-inh")) is None
    assert 0 < redis.ttl(node_calls_key("t-inh")) <= 10800 + 5
