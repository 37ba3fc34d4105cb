import json

from dispatcher.models import StateEvent
from lbcore import contract


def url(dest):
    return f"/api/v1/destinations/{dest.pk}/state"


def test_an_operator_puts_a_destination_into_maintenance(as_operator, operator, table):
    dest = table["dests"][2]
    response = as_operator.post(url(dest), {"state": "inactive", "reason": "disk swap"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == dest.pk and body["admin_state"] == "inactive" and body["kamailio_flags"] == "I" and body["flags"] == 1
    event = StateEvent.objects.get(destination=dest)
    assert (event.kind, event.old, event.new, event.cause, event.actor, event.reason) == (
        "admin",
        "active",
        "inactive",
        "api",
        operator,
        "disk swap",
    )


def test_the_trailing_slash_is_optional(as_operator, table):
    assert as_operator.post(url(table["dests"][0]) + "/", {"state": "disabled"}, format="json").status_code == 200


def test_the_same_state_records_nothing(as_operator, table):
    response = as_operator.post(url(table["dests"][0]), {"state": "active"}, format="json")
    assert response.status_code == 200 and not StateEvent.objects.exists()


def test_it_requires_authentication(anonymous, table):
    assert anonymous.post(url(table["dests"][0]), {"state": "inactive"}, format="json").status_code == 401


def test_it_refuses_viewer(as_viewer, table):
    response = as_viewer.post(url(table["dests"][0]), {"state": "inactive"}, format="json")
    assert response.status_code == 403 and "operator role" in response.json()["detail"]


def test_it_refuses_a_read_only_operator_token(as_readonly_operator, table):
    response = as_readonly_operator.post(url(table["dests"][0]), {"state": "inactive"}, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "This token is read-only."


def test_unknown_destination_is_404(as_operator, db):
    assert as_operator.post("/api/v1/destinations/999999/state", {"state": "inactive"}, format="json").status_code == 404


def test_get_is_405(as_operator, table):
    assert as_operator.get(url(table["dests"][0])).status_code == 405


def test_a_bad_state_names_the_field(as_operator, table):
    response = as_operator.post(url(table["dests"][0]), {"state": "sleeping"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["state"]
    response = as_operator.post(url(table["dests"][0]), {}, format="json")
    assert response.status_code == 400 and response.json() == {"state": ["This field is required."]}


def test_a_state_change_reaches_redis(as_operator, table, redis, django_capture_on_commit_callbacks):
    dest = table["dests"][1]
    pubsub = redis.pubsub()
    pubsub.subscribe(contract.EVENTS_CHANNEL)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    with django_capture_on_commit_callbacks(execute=True):
        response = as_operator.post(url(dest), {"state": "inactive"}, format="json")
    assert response.status_code == 200
    message = pubsub.get_message(timeout=5)
    assert message is not None and json.loads(message["data"])["type"] == "table"
    published = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert published.version == json.loads(message["data"])["version"]
    assert published.destination(dest.pk).admin_state == "inactive"
    pubsub.close()
