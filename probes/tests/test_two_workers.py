"""Several workers: each server is probed once per round, and a round never
overlaps an earlier one for a server whose probe is still out."""

from collections import Counter

import pytest

from probes.tests.conftest import QUEUE, TASK_TIMEOUT, Worker, free_port
from probes.tests.responder import SILENT, Responder

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

N = 40


def probes_per_uri(responder):
    """Distinct probes (Call-IDs) per URI: UDP retransmissions of one probe count once."""
    return Counter(uri for uri, _ in {(r.uri, r.call_id) for r in responder.received})


@pytest.fixture(scope="module")
def second_worker(database_url, worker):
    w = Worker("probes-b", [QUEUE + ".b"], database_url).wait_ready()
    yield w
    w.stop()


@pytest.fixture
def responder():
    """N servers: one port each."""
    r = Responder(free_port(), ("udp",), extra_ports=[free_port() for _ in range(N - 1)]).start()
    yield r
    r.stop()


@pytest.fixture
def many(responder, make_destination):
    return [make_destination(f"sip:ast{i}@127.0.0.1:{port}") for i, port in enumerate(responder.ports)]


def test_two_workers_running_one_round_probe_each_destination_once(probes, second_worker, responder, probe_settings, many):
    # Silent destinations keep every probe out for the whole timeout, so the rounds overlap.
    responder.answer(SILENT)
    a = probes.send_round(7, QUEUE + ".a")
    b = probes.send_round(7, QUEUE + ".b")
    results = [a.get(timeout=TASK_TIMEOUT), b.get(timeout=TASK_TIMEOUT)]
    assert sum(r["probed"] for r in results) == N
    assert probes_per_uri(responder) == Counter({d.uri: 1 for d in many})


def test_a_new_round_skips_destinations_still_busy_from_the_last(probes, second_worker, responder, probe_settings, many):
    probe_settings.ping_timeout_ms = 1000
    probe_settings.save()
    responder.answer(SILENT)
    first = probes.send_round(1, QUEUE + ".a")
    assert responder.wait_for(lambda r: r.count() >= N, timeout=5)
    second = probes.send_round(2, QUEUE + ".b")
    assert second.get(timeout=TASK_TIMEOUT)["probed"] == 0
    assert first.get(timeout=TASK_TIMEOUT)["probed"] == N
    assert probes_per_uri(responder) == Counter({d.uri: 1 for d in many})
    # Once the first round is recorded, the next one probes them all again.
    assert probes.round(3)["probed"] == N
