"""A change that committed while Redis was away reaches lb:table through the beat's tick, run by a
real Celery worker, as soon as Redis takes writes again: no one has to press anything."""

import json

import pytest
from django.conf import settings

from dispatcher import publication
from dispatcher.models import Destination
from dispatcher.publisher import PUBLISHED_KEY
from dispatcher.services import set_state
from lbcore import contract
from probes.tests.conftest import QUEUE

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
DEAD_REDIS = "redis://127.0.0.1:1/0"
TICK_TIMEOUT = 10


def test_it_publishes_a_change_that_redis_missed(probes, events, make_destination):
    dest = make_destination("sip:127.0.0.1:5099", duid="ast1")
    probes.redis.set(contract.PING_ACTIVE_KEY, "0")  # this test is about the table, not the probes
    publication.publish()
    live_url, settings.REDIS_URL = settings.REDIS_URL, DEAD_REDIS
    try:
        set_state(dest, "inactive", reason="kernel update")  # commits; the publish after it fails
    finally:
        settings.REDIS_URL = live_url
    assert Destination.objects.get(pk=dest.pk).admin_state == "inactive"
    events.drain()
    table = contract.decode_table(probes.redis.get(contract.TABLE_KEY))
    assert table.destination(dest.pk).admin_state == "active"

    probes.app.send_task("probes.tick", queue=QUEUE + ".a")
    event = events.wait_for(lambda e: e.get("type") == "table", TICK_TIMEOUT)
    assert event is not None, probes.worker.log()[-3000:]
    table = contract.decode_table(probes.redis.get(contract.TABLE_KEY))
    assert table.version == event["version"] and table.destination(dest.pk).admin_state == "inactive"
    assert json.loads(probes.redis.get(PUBLISHED_KEY))["revision"] == publication.publisher.wanted_revision()
