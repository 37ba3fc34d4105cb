"""Between rounds, destinations that are down are probed every recovery_interval, so a
restarted server is back in seconds rather than after a whole ping_interval."""

import pytest

from probes import claims
from probes.tests.conftest import QUEUE

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_it_brings_a_restarted_server_back_without_waiting_for_a_round(probes, responder, probe_settings, make_destination):
    probe_settings.probing_threshold = 1
    probe_settings.save()
    down = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    healthy = make_destination(f"sip:ast2@127.0.0.1:{responder.ports[1]}")
    responder.answer(503, uri=down.uri)
    probes.round()
    assert probes.health(down.pk)["state"] == "down" and probes.health(healthy.pk)["state"] == "up"
    responder.answer(200, uri=down.uri)
    healthy_probes = responder.count(healthy.uri)
    probes._call("probes.recover", [], QUEUE + ".a")
    assert probes.health(down.pk)["state"] == "up"
    assert responder.count(healthy.uri) == healthy_probes  # only what was down was probed
    down.refresh_from_db()
    assert down.health == "up" and down.events.filter(kind="health", new="up", cause="probe").exists()


def test_it_probes_only_what_is_down(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    probes.round()
    assert probes.health(dest.pk)["state"] == "up"
    sent = responder.count(dest.uri)
    probes._call("probes.recover", [], QUEUE + ".a")
    assert responder.count(dest.uri) == sent


def test_one_recovery_per_interval_cluster_wide(lb_redis):
    assert claims.start_recovery_if_due(lb_redis, 2) is True
    assert claims.start_recovery_if_due(lb_redis, 2) is False
    assert 0 < lb_redis.pttl(claims.RECOVERY_KEY) <= 2000
