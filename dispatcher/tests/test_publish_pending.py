"""A change that committed while Redis refused the publish is shown as not applied (banner, row,
/healthz, the answer to the POST itself), never a 500, and the beat's tick publishes it once Redis
takes writes again.

Redis is a redis-server of this module's own, so pausing its writes (CLIENT PAUSE WRITE, what the
audit did) disturbs no other test run sharing the test Redis.
"""

import json
import os
import subprocess
import time

import pytest
import redis as redis_lib

from dispatcher import publication
from dispatcher.models import Destination
from dispatcher.publisher import PUBLISHED_KEY
from dispatcher.tests.api_support import client_for
from dispatcher.tests.panel_support import make_destination, make_set, write_node
from lbcore import contract
from probes.tasks import ensure_table
from tests.ports import is_free

# Transactional (the publish and the read-only session need real commits), restoring the
# migrated rows after, like the probe tests.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
HTMX = {"HTTP_HX_REQUEST": "true"}
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 23000)
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def own_redis(settings, tmp_path):
    """A redis-server on a free loopback port, for this test only; settings.REDIS_URL points at it."""
    port = next(p for p in range(PORT_BASE + 900, PORT_BASE + 1000) if is_free(p))
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis_lib.Redis(port=port, socket_timeout=5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"redis-server on port {port} did not start") from None
            time.sleep(0.02)
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    yield client
    client.close()
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def ast1(transactional_db):
    return make_destination(make_set(), 1)


def published_state(r, dest):
    table = contract.decode_table(r.get(contract.TABLE_KEY))
    return table.destination(dest.pk).admin_state


def test_it_answers_maintenance_with_the_row_and_why_when_redis_refuses_the_publish(client, operator, ast1, own_redis):
    version = publication.publish()
    write_node(own_redis, "proxy-a", table_version=version)
    client.force_login(operator)
    own_redis.execute_command("CLIENT", "PAUSE", 20000, "WRITE")
    try:
        response = client.post(f"/destinations/{ast1.pk}/state/", {"state": "inactive", "reason": "kernel"}, **HTMX)
    finally:
        own_redis.execute_command("CLIENT", "UNPAUSE")
    body = response.content.decode()
    assert response.status_code == 200, body
    assert 'data-testid="not-applied"' in body and 'data-testid="not-applied-notice"' in body
    assert "Change not applied to the proxies: Redis did not take the table" in body and "Retrying" in body
    assert 'data-testid="draining"' not in body and "Traceback" not in body
    # The database committed; the proxies' table still sends calls to ast1.
    assert Destination.objects.get(pk=ast1.pk).admin_state == "inactive"
    assert published_state(own_redis, ast1) == "active"


def test_it_shows_not_applied_everywhere_until_the_beat_publishes(client, operator, ast1, own_redis, settings):
    version = publication.publish()
    write_node(own_redis, "proxy-a", table_version=version)
    client.force_login(operator)
    live_url, settings.REDIS_URL = settings.REDIS_URL, DEAD_REDIS  # Redis away while the change commits
    response = client.post(f"/destinations/{ast1.pk}/state/", {"state": "inactive"}, **HTMX)
    assert response.status_code == 200 and b"not applied to the proxies" in response.content
    settings.REDIS_URL = live_url

    board = client.get("/sets/", **HTMX).content.decode()
    assert 'data-testid="not-applied"' in board and "since " in board
    assert 'data-testid="not-draining"' in board and 'data-testid="drained"' not in board
    assert b"Change not applied to the proxies" in client.get("/audit/").content  # every page, not only the board
    health = client.get("/healthz")
    assert health.status_code == 503 and "publication" in health.json()["down"]
    assert "not applied to the proxies" in health.json()["checks"]["publication"]["error"]

    assert ensure_table(own_redis) is True  # the beat's tick
    assert published_state(own_redis, ast1) == "inactive"
    write_node(own_redis, "proxy-a", table_version=int(own_redis.get(contract.TABLE_VERSION_KEY)))
    board = client.get("/sets/", **HTMX).content.decode()
    assert "not applied" not in board and "not-draining" not in board
    assert client.get("/healthz").json()["checks"]["publication"]["ok"] is True
    assert ensure_table(own_redis) is False  # nothing left to publish


def test_the_api_answers_202_naming_why(operator, ast1, own_redis, settings):
    publication.publish()
    api = client_for(operator)
    settings.REDIS_URL = DEAD_REDIS
    response = api.post(f"/api/v1/destinations/{ast1.pk}/state", {"state": "inactive", "reason": "kernel"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["admin_state"] == "inactive" and body["applied"] is False
    assert body["detail"].startswith("Change not applied to the proxies: Redis did not take the table")


def test_a_proxy_stuck_on_an_older_table_is_pending(client, viewer, ast1, own_redis):
    version = publication.publish()
    publication.want_new_table()  # outside a transaction: publishes at once
    write_node(own_redis, "proxy-a", table_version=version)  # still on the first table
    doc = json.loads(own_redis.get(PUBLISHED_KEY))
    own_redis.set(PUBLISHED_KEY, json.dumps({**doc, "at": time.time() - publication.BEHIND_GRACE_SECONDS - 1}))
    client.force_login(viewer)
    board = client.get("/sets/", **HTMX).content.decode()
    assert f"Change not applied to every proxy: proxy-a (v{version})" in board
    assert "publication" in client.get("/healthz").json()["down"]


def test_json_rpc_says_saved_but_not_applied_instead_of_ok(operator, ast1, own_redis, settings):
    publication.publish()
    api = client_for(operator)
    settings.REDIS_URL = DEAD_REDIS
    body = {"jsonrpc": "2.0", "method": "dispatcher.set_duid_state", "params": ["i", ast1.dset.setid, ast1.duid], "id": 7}
    response = api.post("/rpc", json.dumps(body), content_type="application/json")
    error = response.json()["error"]
    assert error["message"] == "State Saved But Not Applied"
    assert error["data"].startswith("Change not applied to the proxies: Redis did not take the table")
    assert Destination.objects.get(pk=ast1.pk).admin_state == "inactive", "the change itself is kept: the beat applies it"


def test_a_row_says_unknown_not_applied_while_redis_cannot_be_read(client, operator, ast1, own_redis, settings):
    """Redis away while a change commits and still away: nobody can tell whether the proxies have
    the new state, so the row says unknown (it used to say nothing, which reads as applied)."""
    version = publication.publish()
    write_node(own_redis, "proxy-a", table_version=version)
    client.force_login(operator)
    settings.REDIS_URL = DEAD_REDIS
    assert client.post(f"/destinations/{ast1.pk}/state/", {"state": "inactive"}, **HTMX).status_code == 200
    for url in ("/sets/", "/"):
        page = client.get(url, **HTMX).content.decode()
        assert 'data-testid="applied-unknown"' in page, url
        assert 'data-testid="drained"' not in page, url
