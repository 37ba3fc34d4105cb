"""The proxy marks a destination suspect and calls probes.probe_now by name: the probe
goes out at once; a silent suspect is down after one probe, one that answers is up."""

import pytest

from dispatcher.models import StateEvent
from lbcore.contract import HEALTH_KEY, SUSPECT, Health, encode_health, health_event
from probes.tests.responder import SILENT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def mark_suspect(redis, dest_id):
    """What the proxy does on a 503 or a timeout to an INVITE."""
    health = Health(state=SUSPECT, reason="503 on INVITE")
    redis.hset(HEALTH_KEY, str(dest_id), encode_health(health))
    redis.publish("lb:events", health_event(dest_id))


@pytest.fixture
def up_destination(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    probes.round()
    assert probes.health(dest.pk)["state"] == "up"
    return dest


def test_a_suspect_mark_triggers_a_probe_within_a_second(probes, responder, up_destination):
    before = responder.count(up_destination.uri)
    mark_suspect(probes.redis, up_destination.pk)
    probes.probe_now(up_destination.pk, "503 on INVITE")
    assert responder.wait_for(lambda r: r.count(up_destination.uri) > before, timeout=1.0)


def test_a_silent_suspect_is_confirmed_down_after_one_probe(probes, responder, up_destination, events):
    responder.answer(SILENT)
    mark_suspect(probes.redis, up_destination.pk)
    probes.probe_now(up_destination.pk, "503 on INVITE")
    pk = up_destination.pk
    event = events.wait_for(
        lambda e: e.get("type") == "health" and e.get("id") == pk and probes.health(pk)["state"] == "down", timeout=5
    )
    assert event is not None
    last = StateEvent.objects.filter(destination=up_destination, kind="health").latest("id")
    assert (last.old, last.new, last.cause) == ("suspect", "down", "probe")
    assert last.reason == "timeout (suspect: 503 on INVITE)"


def test_a_suspect_that_answers_goes_back_up(probes, responder, up_destination, events):
    mark_suspect(probes.redis, up_destination.pk)
    result = probes.probe_now(up_destination.pk, "timeout on INVITE").get(timeout=10)
    assert result["transitions"] == [[up_destination.pk, "suspect", "up", "200 OK (suspect: timeout on INVITE)"]]
    published = [e for e in events.drain() if e["type"] == "health"]
    assert published == [{"type": "health", "id": up_destination.pk}] * 2  # the proxy's mark, then ours
    assert probes.health(up_destination.pk)["state"] == "up"


def test_a_round_does_not_overwrite_a_suspect_mark(probes, responder, up_destination):
    mark_suspect(probes.redis, up_destination.pk)
    # A round's probe that started before the mark must not quietly clear it: the
    # round sees the suspect and settles it like probe_now would, with an event.
    probes.round()
    assert probes.health(up_destination.pk)["state"] == "up"
    last = StateEvent.objects.filter(destination=up_destination, kind="health").latest("id")
    assert (last.old, last.new) == ("suspect", "up")


def test_probe_now_ignores_a_disabled_destination(probes, responder, up_destination):
    up_destination.admin_state = "disabled"
    up_destination.save()
    before = responder.count()
    assert probes.probe_now(up_destination.pk, "503 on INVITE").get(timeout=10) == {"probed": 0}
    assert responder.count() == before


def test_probe_now_confirms_down_even_before_the_mark_lands(probes, responder, up_destination):
    # The proxy writes its mark off its event loop; the task may get here first.
    responder.answer(SILENT)
    result = probes.probe_now(up_destination.pk, "503 on INVITE").get(timeout=10)
    assert result["transitions"] == [[up_destination.pk, "up", "down", "timeout (suspect: 503 on INVITE)"]]
    assert probes.health(up_destination.pk)["state"] == "down"


def test_probe_now_does_nothing_while_probing_is_paused(probes, responder, up_destination):
    probes.redis.set("lb:probe:active", "0")
    before = responder.count()
    assert probes.probe_now(up_destination.pk, "503 on INVITE").get(timeout=10) == {"probed": 0}
    assert responder.count() == before


def test_the_proxys_mark_is_in_the_history_before_the_probe_that_settles_it(probes, responder, up_destination):
    responder.answer(SILENT)
    mark_suspect(probes.redis, up_destination.pk)
    probes.probe_now(up_destination.pk, "replied 503").get(timeout=10)
    history = list(
        StateEvent.objects.filter(destination=up_destination, kind="health")
        .order_by("id")
        .values_list("old", "new", "cause", "reason")
    )
    assert history[-2:] == [
        ("up", "suspect", "proxy", "replied 503"),
        ("suspect", "down", "probe", "timeout (suspect: replied 503)"),
    ]
