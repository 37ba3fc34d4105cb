"""The asyncio prober on its own (no worker): replies matched by branch, names resolved,
failures named. The responder is real, on 127.0.0.1."""

import asyncio

from probes.prober import ProbeConfig, Target, probe_all
from probes.tests.conftest import free_port
from probes.tests.responder import SILENT, Responder


def probe(targets, timeout=0.3):
    return asyncio.run(probe_all(targets, ProbeConfig(timeout=timeout, from_uri="sip:lb@127.0.0.1")))


def test_it_matches_each_reply_to_its_destination(responder):
    uris = [f"sip:d{i}@127.0.0.1:{responder.port}" for i in range(50)]
    for i, uri in enumerate(uris):
        responder.answer((200, 404, 503, SILENT)[i % 4], uri)
    outcomes = probe([Target(i, uri, "127.0.0.1", responder.port, "udp") for i, uri in enumerate(uris)])
    assert [o.code for o in outcomes] == [(200, 404, 503, None)[i % 4] for i in range(50)]
    assert all(o.rtt_ms is not None for o in outcomes if o.code)
    assert {o.status for o in outcomes if o.code is None} == {"timeout"}


def test_it_resolves_a_host_name(responder):
    [outcome] = probe([Target(1, f"sip:a@localhost:{responder.port}", "localhost", responder.port, "udp")])
    assert outcome.code == 200


def test_it_names_a_host_it_cannot_resolve():
    [outcome] = probe([Target(1, "sip:a@no-such-host.invalid:5060", "no-such-host.invalid", 5060, "udp")])
    assert (outcome.code, outcome.status) == (None, "cannot resolve host (NXDOMAIN)")


def test_it_probes_udp_and_tcp_in_one_round():
    both = Responder(free_port(), ("udp", "tcp")).start()
    try:
        outcomes = probe(
            [
                Target(1, f"sip:a@127.0.0.1:{both.port}", "127.0.0.1", both.port, "udp"),
                Target(2, f"sip:a@127.0.0.1:{both.port};transport=tcp", "127.0.0.1", both.port, "tcp"),
            ]
        )
        assert [o.code for o in outcomes] == [200, 200]
        assert sorted(r.transport for r in both.received) == ["tcp", "udp"]
    finally:
        both.stop()


def test_it_sends_a_silent_destination_one_request_per_retransmission_interval(responder):
    responder.answer(SILENT)
    # 1.2 s: sent at 0, retransmitted at T1 (0.5 s), then waits out the rest.
    [outcome] = probe([Target(1, f"sip:a@127.0.0.1:{responder.port}", "127.0.0.1", responder.port, "udp")], timeout=1.2)
    assert outcome.status == "timeout"
    assert responder.count() == 2
    assert len({r.call_id for r in responder.received}) == 1
