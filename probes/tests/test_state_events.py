"""Each health transition writes one StateEvent and one lb:events message; a probe
that changes nothing writes neither (it only refreshes lb:health). The event names the
destination; the state is read from lb:health."""

import json

import pytest

from dispatcher.models import StateEvent
from lbcore.contract import decode_event
from probes.tests.responder import SILENT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_it_writes_one_event_per_transition_and_none_otherwise(probes, responder, probe_settings, make_destination, events):
    probe_settings.probing_threshold = 2
    probe_settings.save()
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    other = make_destination(f"sip:ast2@127.0.0.1:{responder.ports[1]}")
    script = [(200, "up"), (200, None), (SILENT, None), (SILENT, "down"), (SILENT, None), (200, "up"), (200, None)]
    for code, change in script:
        responder.answer(code, dest.uri)
        probes.round()
        published = [e for e in events.drain() if e["type"] == "health" and e["id"] == dest.pk]
        assert len(published) == (1 if change else 0)
        if change:
            assert decode_event(json.dumps(published[0])) == ("health", dest.pk)
            assert probes.health(dest.pk)["state"] == change
    rows = StateEvent.objects.filter(destination=dest, kind="health").order_by("id")
    assert [(e.old, e.new, e.cause) for e in rows] == [
        ("unknown", "up", "probe"),
        ("up", "down", "probe"),
        ("down", "up", "probe"),
    ]
    assert rows[1].reason == "timeout after 2 probes"
    # The other destination answered all along: one transition, from unknown.
    assert StateEvent.objects.filter(destination=other, kind="health").count() == 1


def test_it_keeps_the_row_and_the_hash_in_step(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    probes.round()
    dest.refresh_from_db()
    assert dest.health == probes.health(dest.pk)["state"] == "up"
    assert dest.health_changed is not None
