"""Maintenance, Disable and Return act on the server: every set's row at once, one transaction, one
audit entry naming the sets touched, one publish (services.set_server_state, and its API endpoint)."""

from pathlib import Path

import pytest

from dispatcher import services
from dispatcher.choices import Cause
from dispatcher.models import Destination, Server, StateEvent, TableRevision
from dispatcher.services import import_dispatcher_list
from lbcore import contract

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"


@pytest.fixture
def seed(db):
    import_dispatcher_list(SEED.read_text())
    StateEvent.objects.all().delete()
    return {s.name: s for s in Server.objects.all()}


def url(server):
    return f"/api/v1/servers/{server.pk}/state"


def states(server):
    return dict(Destination.objects.filter(server=server).values_list("dset__setid", "admin_state"))


def revision():
    return TableRevision.objects.get(pk=1).number


def test_it_sets_every_row_with_one_event(seed, operator):
    ast2 = seed["ast2"]
    services.set_server_state(ast2, "inactive", actor=operator, cause=Cause.USER, reason="disk swap")
    assert states(ast2) == {1: "inactive", 2: "inactive"}
    assert states(seed["ast1"]) == {1: "active", 2: "active"}
    event = StateEvent.objects.get()
    assert (event.server, event.destination, event.kind, event.old, event.new, event.actor, event.reason) == (
        ast2,
        None,
        "admin",
        "active",
        "inactive",
        operator,
        "disk swap",
    )
    assert event.subject == "server ast2 (10.0.0.12:5080) in sets 1, 2"
    assert (event.before, event.after) == ({"set 1": "active", "set 2": "active"}, {"set 1": "inactive", "set 2": "inactive"})


def test_it_publishes_once(seed, redis, django_capture_on_commit_callbacks):
    before = revision()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.set_server_state(seed["ast3"], "disabled")
    assert revision() == before + 1 and len(callbacks) == 1
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert {d.admin_state for s in table.sets.values() for d in s.destinations if d.server_id == seed["ast3"].pk} == {"disabled"}


def test_it_touches_only_the_rows_that_differ_and_names_their_sets(seed):
    ast1 = seed["ast1"]
    services.set_state(Destination.objects.get(server=ast1, dset__setid=1), "inactive")
    StateEvent.objects.all().delete()
    services.set_server_state(ast1, "inactive")
    event = StateEvent.objects.get()
    assert (event.old, event.subject) == ("mixed", "server ast1 (10.0.0.11:5080) in set 2")
    assert event.after == {"set 1": "inactive", "set 2": "inactive"}


def test_the_same_state_records_and_publishes_nothing(seed):
    before = revision()
    services.set_server_state(seed["ast1"], "active")
    assert not StateEvent.objects.exists() and revision() == before


def test_a_row_keeps_its_own_state_too(seed):
    # Kamailio's dispatcher.set_state names one set: per-row state stays possible.
    dest = Destination.objects.get(server=seed["ast1"], dset__setid=2)
    services.set_state(dest, "inactive")
    assert states(seed["ast1"]) == {1: "active", 2: "inactive"}


def test_an_operator_puts_a_server_into_maintenance_through_the_api(as_operator, operator, seed):
    response = as_operator.post(url(seed["ast1"]), {"state": "inactive", "reason": "kernel update"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["admin_state"]) == (seed["ast1"].pk, "inactive")
    assert [s["admin_state"] for s in body["sets"]] == ["inactive", "inactive"]
    event = StateEvent.objects.get()
    assert (event.cause, event.actor, event.reason) == ("api", operator, "kernel update")


def test_return_and_disable(as_operator, seed):
    assert as_operator.post(url(seed["ast1"]), {"state": "disabled"}, format="json").json()["admin_state"] == "disabled"
    assert as_operator.post(url(seed["ast1"]) + "/", {"state": "active"}, format="json").json()["admin_state"] == "active"
    assert StateEvent.objects.count() == 2


def test_it_refuses_viewer(as_viewer, seed):
    response = as_viewer.post(url(seed["ast1"]), {"state": "inactive"}, format="json")
    assert response.status_code == 403 and "operator role" in response.json()["detail"]
    assert states(seed["ast1"]) == {1: "active", 2: "active"} and not StateEvent.objects.exists()


def test_it_refuses_a_read_only_operator_token(as_readonly_operator, seed):
    response = as_readonly_operator.post(url(seed["ast1"]), {"state": "inactive"}, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "This token is read-only."


def test_it_requires_authentication(anonymous, seed):
    assert anonymous.post(url(seed["ast1"]), {"state": "inactive"}, format="json").status_code == 401


def test_a_bad_state_names_the_field(as_operator, seed):
    response = as_operator.post(url(seed["ast1"]), {"state": "mixed"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["state"]
    response = as_operator.post(url(seed["ast1"]), {}, format="json")
    assert response.status_code == 400 and response.json() == {"state": ["This field is required."]}
    assert not StateEvent.objects.exists()


def test_unknown_server_is_404(as_operator, db):
    assert as_operator.post("/api/v1/servers/999999/state", {"state": "inactive"}, format="json").status_code == 404


def test_get_is_405(as_operator, seed):
    assert as_operator.get(url(seed["ast1"])).status_code == 405
