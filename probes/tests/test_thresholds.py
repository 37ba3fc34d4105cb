"""Kamailio's thresholds through the real worker: up on 200, down after exactly
probing_threshold silent probes, up again after inactive_threshold good replies."""

import pytest

from dispatcher.models import StateEvent
from probes.tests.responder import SILENT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def health_events(dest):
    return list(
        StateEvent.objects.filter(destination=dest, kind="health").order_by("id").values_list("old", "new", "cause", "reason")
    )


def test_it_keeps_an_answering_destination_up(probes, responder, probe_settings, make_destination):
    probe_settings.ping_from = "sip:lb@127.0.0.1"
    probe_settings.save()
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    for _ in range(3):
        assert probes.round()["probed"] == 1
    assert probes.health(dest.pk)["state"] == "up"
    assert probes.health(dest.pk)["code"] == 200
    assert health_events(dest) == [("unknown", "up", "probe", "200 OK")]
    assert responder.count(dest.uri) == 3
    assert {(r.method, r.from_.split(";")[0]) for r in responder.received} == {("OPTIONS", "<sip:lb@127.0.0.1>")}
    samples = probes.redis.lrange(f"lb:rtt:{dest.pk}", 0, -1)
    assert len(samples) == 3 and all('"code":200' in s for s in samples)
    assert float(probes.redis.get("lb:probe:last_round")) > 0


def test_it_takes_a_silent_destination_down_after_exactly_threshold_probes(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    probes.round()
    responder.answer(SILENT)
    for n in (1, 2):
        probes.round()
        health = probes.health(dest.pk)
        assert (health["state"], health["fails"], health["reason"]) == ("up", n, "timeout")
    probes.round()
    assert probes.health(dest.pk)["state"] == "down"
    assert responder.count(dest.uri) == 1 + 3
    dest.refresh_from_db()
    assert dest.health == "down"
    assert health_events(dest)[-1] == ("up", "down", "probe", "timeout after 3 probes")


def test_it_brings_a_destination_back_after_inactive_threshold_good_replies(probes, responder, probe_settings, make_destination):
    probe_settings.probing_threshold = 1
    probe_settings.inactive_threshold = 2
    probe_settings.save()
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    responder.answer(503)
    probes.round()
    assert probes.health(dest.pk)["state"] == "down"
    responder.answer(200)
    probes.round()
    assert probes.health(dest.pk)["state"] == "down"
    probes.round()
    assert probes.health(dest.pk)["state"] == "up"
    assert health_events(dest) == [
        ("unknown", "down", "probe", "503 Service Unavailable"),
        ("down", "up", "probe", "200 OK after 2 probes"),
    ]


def test_it_counts_a_failure_streak_again_after_a_good_reply(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    probes.round()
    for code in (SILENT, SILENT, 200, SILENT, SILENT):
        responder.answer(code)
        probes.round()
    assert probes.health(dest.pk)["state"] == "up"
    assert probes.health(dest.pk)["fails"] == 2
