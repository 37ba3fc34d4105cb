"""The dashboard says "probing stopped" as soon as a probe round is late (the worker or beat died),
not 50 s later: a real worker runs a round, dies, and the banner follows within one interval."""

import time

import pytest

from dispatcher import live
from lbcore import contract
from probes.tests.conftest import QUEUE, Worker

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def viewer_client(client, django_user_model, transactional_db):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw-viewer")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client.force_login(user)
    return client


def board(client):
    return client.get("/sets/", **HTMX).content.decode()


def test_it_shows_probing_stopped_once_a_round_is_late(
    probe_settings, lb_redis, celery_client, database_url, viewer_client, responder, make_destination
):
    make_destination(f"sip:127.0.0.1:{responder.port}")
    doomed = Worker("probes-doomed", [QUEUE + ".doomed"], database_url).wait_ready()
    try:
        celery_client.send_task("probes.run_round", args=[None], queue=QUEUE + ".doomed").get(timeout=15)
    finally:
        doomed.stop()  # no worker runs rounds from here on
    assert 'data-testid="probing-stopped"' not in board(viewer_client)
    last_round = float(lb_redis.get(contract.LAST_ROUND_KEY))
    late_after = probe_settings.ping_interval + probe_settings.ping_timeout_ms / 1000 + live.ROUND_LATE_MARGIN_SECONDS
    deadline = last_round + late_after + 5
    while 'data-testid="probing-stopped"' not in (page := board(viewer_client)):
        assert time.time() < deadline, "no probing-stopped banner within one late round"
        time.sleep(0.2)
    assert time.time() - last_round < late_after + 2
    assert "probing stopped: the last probe round finished" in page and "restart the Celery worker" in page


def test_paused_probing_is_not_stopped(probe_settings, lb_redis, viewer_client):
    lb_redis.set(contract.LAST_ROUND_KEY, time.time() - 3600)
    assert 'data-testid="probing-stopped"' in board(viewer_client)
    lb_redis.set(contract.PING_ACTIVE_KEY, "0")
    assert 'data-testid="probing-stopped"' not in board(viewer_client)
