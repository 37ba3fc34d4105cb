"""A crashed process (ICMP port unreachable) or a silent one (no provisional within
trying_timeout) loses the call to the next destination at once, not after fr_timer."""

import asyncio
import time

from proxy.tests.harness import Harness, dest, run


def test_it_fails_over_at_once_on_icmp_port_unreachable():
    def dests(ports):  # the first destination's port has nobody listening
        return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:3])], ports[1:3]

    async def scenario():
        async with Harness(dests, trying_timeout_ms=5000) as h:
            b = h.dest_ports[1]
            started = time.monotonic()
            h.invite(b"icmp-1")
            inv = await h.uas[b].recv()
            assert time.monotonic() - started < 1.0
            assert inv.method == b"INVITE"
            assert h.suspects and h.suspects[0][0] == 1 and "ICMP" in h.suspects[0][1]

    run(scenario())


def test_it_fails_over_when_no_provisional_comes_in_time():
    def dests(ports):  # the first destination is bound but never answers
        return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:3])], ports[:3]

    async def scenario():
        async with Harness(dests, trying_timeout_ms=300) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"silent-1")
            first = await h.uas[a].recv()
            inv = await h.uas[b].recv(timeout=2)
            assert inv.call_id == b"silent-1"
            for _ in range(100):  # marked suspect once trying_timeout passes in silence (proxy.silence)
                if h.suspects:
                    break
                await asyncio.sleep(0.02)
            assert h.suspects[0][0] == 1 and "no provisional" in h.suspects[0][1]
            # the abandoned branch answers late, after the second one did: ACK + BYE it
            h.uas[b].answer(inv, 200, b"OK", tag=b"b")
            assert (await h.uac.recv()).code == 200
            h.uas[a].answer(first, 200, b"OK", tag=b"a")
            got = [await h.uas[a].recv(), await h.uas[a].recv()]
            got = [m for m in got if m.method != b"INVITE"]  # a retransmission may come first
            methods = sorted(m.method for m in got)
            while methods != [b"ACK", b"BYE"]:
                got.append(await h.uas[a].recv())
                methods = sorted(m.method for m in got if m.method in (b"ACK", b"BYE"))
            await h.uac.silent(0.2)  # the caller never sees the losing 2xx

    run(scenario())


def test_a_late_answer_from_the_abandoned_branch_wins_when_the_call_has_none():
    def dests(ports):
        return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:2])], ports[:2]

    async def scenario():
        async with Harness(dests, trying_timeout_ms=300) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"late-1")
            first = await h.uas[a].recv()
            second = await h.uas[b].recv(timeout=2)
            h.uas[a].answer(first, 200, b"OK", tag=b"a")
            ok = await h.uac.recv()
            assert ok.code == 200 and ok.to_tag == b"a"  # relayed, never lost
            h.uas[b].answer(second, 180, b"Ringing")
            cancel = await h.uas[b].recv()
            assert cancel.method == b"CANCEL" and cancel.via.branch == second.via.branch

    run(scenario())


def test_it_does_not_blame_a_server_for_its_own_late_loop():
    def dests(ports):
        return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:2])], ports[:2]

    async def scenario():
        async with Harness(dests, trying_timeout_ms=200) as h:
            a = h.dest_ports[0]
            h.invite(b"lag-1")
            inv = await h.uas[a].recv()
            # a backlog bigger than one read batch, then the 180, all queued in our socket...
            stray = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nContent-Length: 0\r\n\r\n"
            for _ in range(400):
                h.uas[a].send(stray, h.proxy_port)
            h.uas[a].answer(inv, 180, b"Ringing")
            time.sleep(0.5)  # ...while our loop is stuck past the trying timeout
            assert (await h.uac.recv()).code == 180
            assert h.suspects == []
            await h.uas[h.dest_ports[1]].silent(0.3)

    run(scenario())


def test_calls_ringing_on_a_server_that_dies_go_on_to_the_next():
    """A server that sent 180 and then crashed takes the call with it: on the ICMP the next send
    to it brings, the ringing call fails over too, instead of ringing on until fr_inv_timer
    (a CI run of test_carriers lost a call this way)."""

    def dests(ports):
        return [dest(1, ports[0], priority=10), dest(2, ports[1], priority=5)], ports[:2]

    async def scenario():
        async with Harness(dests, trying_timeout_ms=5000, fr_inv_timer_ms=30000) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"ringing-1")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 180, b"Ringing")
            assert (await h.uac.recv()).code == 180
            await h.uas[a].crash()  # the server crashes while the call rings
            h.invite(b"ringing-2")  # its INVITE meets the closed port: ICMP
            got = {(await h.uas[b].recv()).call_id, (await h.uas[b].recv()).call_id}
            assert got == {b"ringing-1", b"ringing-2"}
            assert h.core.ringing_by_addr.get(("127.0.0.1", a)) is None

    run(scenario())
