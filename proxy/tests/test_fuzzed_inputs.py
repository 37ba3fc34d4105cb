"""What an in-process fuzzer (atheris, over Proxy.on_message) found the proxy core doing with hostile
or broken input, each pinned here: an exception that escaped to the event loop, a transaction that
never left the tables, a response that broke a transaction half-way."""

import logging

from proxy.tests.harness import Harness, dest, request, run
from sip.responses import response_bytes


def one_server(ports):
    return [dest(1, ports[0])], ports[:1]


def _no_errors(caplog):
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def test_a_request_with_an_unreadable_to_gets_its_400(caplog):
    # malformed() read the To to tag it for the 400 and raised again, out of on_message
    async def scenario():
        async with Harness(one_server) as h:
            bad = request(b"OPTIONS", h.uac_port, h.proxy_port, b"badto").replace(b"To: <sip:service@127.0.0.1>", b"To: <x;tag=1")
            h.send(bad)
            resp = await h.uac.recv()
            assert resp.code == 400 and b"To" in resp.reason

    with caplog.at_level(logging.WARNING):
        run(scenario())
    _no_errors(caplog)


def test_a_request_refused_after_its_transaction_was_made_leaves_the_tables(caplog):
    # an R-URI or Route that fails to parse is read after the server transaction exists: it was
    # answered 400 statelessly and the transaction stayed for good (for an untrusted source, one
    # of its max_per_source slots too)
    async def scenario():
        async with Harness(one_server) as h:
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"orphan", uri=b"sip:"))
            assert (await h.uac.recv()).code == 400
            h.send(request(b"BYE", h.uac_port, h.proxy_port, b"orphan2", to_tag=b"t", routes=[b"<sip:h:port>"]))
            assert (await h.uac.recv()).code in (400, 404)
            assert h.core.servers, "the transactions linger a while, as answered ones do"
            assert all(st.final_code is not None for st in h.core.servers.values())

    with caplog.at_level(logging.WARNING):
        run(scenario())
    _no_errors(caplog)


def _without(resp, name):
    lines = [line for line in resp.split(b"\r\n") if not line.lower().startswith(name + b":")]
    return b"\r\n".join(lines)


def test_a_final_response_without_to_or_from_is_dropped_before_it_changes_anything(caplog):
    # a 486 without To raised in build_ack after the branch had moved on: the INVITE was never
    # finished, the caller got nothing, max_pending kept the slot; a 200 without From, the same
    async def scenario():
        async with Harness(one_server) as h:
            a = h.dest_ports[0]
            for call_id, code, header in ((b"noto", 486, b"to"), (b"nofrom", 200, b"from")):
                h.invite(call_id)
                inv = await h.uas[a].recv()
                while inv.method != b"INVITE":  # our ACK of the previous call's 486
                    inv = await h.uas[a].recv()
                h.uas[a].answer(inv, 100, b"Trying")  # the server is alive: only its final response is broken
                busy = response_bytes(inv, code, b"Whatever", to_tag=b"uas", extra=[b"Contact: <sip:127.0.0.1:%d>" % a])
                h.uas[a].send(_without(busy, header), h.proxy_port)
                assert await h.uac.silent(within=0.2, skip=(100, 486))
                h.uas[a].answer(inv, 486, b"Busy Here")  # the real answer still completes the call
                final = await h.uac.recv()
                while final.call_id != call_id:  # the previous call's 486, retransmitted: our peer never ACKs
                    final = await h.uac.recv()
                assert final.code == 486
            assert h.core.pending_invites == 0

    with caplog.at_level(logging.WARNING):
        run(scenario())
    _no_errors(caplog)


def test_a_parser_bug_is_logged_once_in_a_while_and_never_reaches_the_loop(caplog, monkeypatch):
    import proxy.core

    def broken(data, stream=False):
        raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")

    async def scenario():
        async with Harness(one_server) as h:
            monkeypatch.setattr(proxy.core, "parse_message", broken)
            for _ in range(20):
                h.core.on_message(b"OPTIONS sip:x SIP/2.0\r\n\r\n", h.listener, ("127.0.0.1", h.uac_port), None)
            monkeypatch.undo()

    with caplog.at_level(logging.WARNING):
        run(scenario())
    logged = [r for r in caplog.records if "failed to parse" in r.getMessage()]
    assert 1 <= len(logged) < 20
