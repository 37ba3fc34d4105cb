"""ds_ping_reply_codes in Kamailio syntax: class=4 makes a 404 good, but a local
timeout is never good (Kamailio's own pitfall: it turns a timeout into a 408)."""

import pytest

from probes.tests.responder import SILENT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def class4(probe_settings):
    probe_settings.ping_reply_codes = "class=4"
    probe_settings.save()
    return probe_settings


def test_it_keeps_a_destination_answering_404_up_with_class_4(probes, responder, class4, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    responder.answer(404)
    for _ in range(4):
        probes.round()
    health = probes.health(dest.pk)
    assert (health["state"], health["code"], health["fails"]) == ("up", 404, 0)


def test_it_still_takes_a_silent_destination_down_with_class_4(probes, responder, class4, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    responder.answer(404)
    probes.round()
    responder.answer(SILENT)
    for _ in range(3):
        probes.round()
    assert probes.health(dest.pk)["state"] == "down"


def test_it_counts_a_404_as_a_failure_by_default(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    responder.answer(404)
    for _ in range(3):
        probes.round()
    health = probes.health(dest.pk)
    assert (health["state"], health["code"], health["reason"]) == ("down", 404, "404 Not Found")


def test_it_accepts_a_listed_code(probes, responder, probe_settings, make_destination):
    probe_settings.ping_reply_codes = "code=503"
    probe_settings.save()
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    responder.answer(503)
    for _ in range(3):
        probes.round()
    assert probes.health(dest.pk)["state"] == "up"
