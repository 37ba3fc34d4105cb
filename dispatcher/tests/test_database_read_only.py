"""A database that takes no writes: /healthz says so (it writes), and every write answers 503 naming
the problem, in the panel, its htmx fragments, the API and JSON-RPC, never a generic 500.

The database is made read-only for this test's session only (default_transaction_read_only), as a
standby or an operator's ALTER would, so other test runs on the server are not touched.
"""

import pytest
from django.db import connection

from dispatcher.models import Destination
from dispatcher.tests.api_support import client_for
from dispatcher.tests.panel_support import make_destination, make_set

# Transactional (the publish and the read-only session need real commits), restoring the
# migrated rows after, like the probe tests.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def ast1(transactional_db):
    return make_destination(make_set(), 1)


def assert_names_the_problem(text):
    assert "Nothing was saved" in text and "read-only" in text and "Traceback" not in text


def test_it_reports_the_database_down_in_healthz(client, redis, transactional_db):
    with read_only():
        response = client.get("/healthz")
    assert response.status_code == 503 and "database" in response.json()["down"]
    assert "does not take writes: it is read-only" in response.json()["checks"]["database"]["error"]


def test_it_reports_the_database_ok_when_it_takes_writes(client, redis, transactional_db):
    assert client.get("/healthz").json()["checks"]["database"] == {"ok": True}


def test_it_answers_a_panel_write_with_503(client, operator, ast1, redis):
    client.force_login(operator)
    with read_only():
        response = client.post(f"/destinations/{ast1.pk}/state/", {"state": "inactive"})
    assert response.status_code == 503 and response["Retry-After"]
    assert_names_the_problem(response.content.decode())
    assert Destination.objects.get(pk=ast1.pk).admin_state == "active"


def test_it_answers_an_htmx_write_with_a_dialog(client, operator, ast1, redis):
    client.force_login(operator)
    with read_only():
        response = client.post(f"/destinations/{ast1.pk}/state/", {"state": "inactive"}, **HTMX)
    assert response.status_code == 503
    assert response["HX-Retarget"] == "#modal" and response["X-Lbpanel-Error"] == "database"
    body = response.content.decode()
    assert 'data-testid="database-error"' in body and "<html" not in body
    assert_names_the_problem(body)


def test_it_answers_an_api_write_with_json_naming_it(operator, ast1, redis):
    api = client_for(operator)
    with read_only():
        response = api.post(f"/api/v1/destinations/{ast1.pk}/state", {"state": "inactive"}, format="json")
    assert response.status_code == 503
    assert_names_the_problem(response.json()["detail"])
    assert response.json()["database"].startswith("it is read-only")


def test_it_answers_json_rpc_in_its_own_shape(operator, ast1, redis):
    api = client_for(operator)
    call = {"jsonrpc": "2.0", "method": "dispatcher.set_state", "params": ["i", 1, ast1.uri], "id": 7}
    with read_only():
        response = api.post("/rpc", call, format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["message"] == "Database Unavailable" and "read-only" in error["data"]


class read_only:  # noqa: N801 (used as `with read_only():`, read like a phrase)
    """The test's own connection refuses writes inside the block (logins and tokens are made before)."""

    def __enter__(self):
        if connection.vendor != "postgresql":
            pytest.skip("a read-only session needs PostgreSQL")
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION default_transaction_read_only = on")

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION default_transaction_read_only = off")
