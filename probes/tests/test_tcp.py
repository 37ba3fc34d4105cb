"""A destination with ;transport=tcp is probed over TCP."""

import pytest

from probes.tests.conftest import free_port
from probes.tests.responder import Responder

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def tcp_only():
    r = Responder(free_port(), ("tcp",)).start()
    yield r
    r.stop()


def test_a_tcp_destination_is_probed_over_tcp(probes, tcp_only, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{tcp_only.port};transport=tcp")
    probes.round()
    assert [r.transport for r in tcp_only.received] == ["tcp"]
    health = probes.health(dest.pk)
    assert (health["state"], health["code"]) == ("up", 200)
    assert health["rtt_ms"] is not None


def test_a_refused_tcp_connection_is_a_failed_probe(probes, probe_settings, make_destination):
    probe_settings.probing_threshold = 1
    probe_settings.save()
    dest = make_destination(f"sip:ast1@127.0.0.1:{free_port()};transport=tcp")
    probes.round()
    health = probes.health(dest.pk)
    assert (health["state"], health["reason"]) == ("down", "connection refused")
