"""/api/v1/servers/: one row per Asterisk box, its calls summed over every set and live proxy, and a
drain that is never "safe" while a set still carries calls or nobody can vouch for the count."""

import time
from pathlib import Path

import pytest

from dispatcher.models import Destination, Server, StateEvent
from dispatcher.services import import_dispatcher_list
from dispatcher.tests.panel_support import write_health, write_node
from lbcore import contract

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"


@pytest.fixture
def seed(db):
    """The seed's dispatcher.list: ast1..ast3, each in set 1 and set 2."""
    import_dispatcher_list(SEED.read_text())
    StateEvent.objects.all().delete()
    return {s.name: s for s in Server.objects.all()}


def row(server, setid):
    return Destination.objects.get(server=server, dset__setid=setid)


def calls(**by_dest):
    return {
        dest.pk: {"active": n, "invites": n, "answered": n, "failovers": 0, "cps": 0.5, "cps_1m": 0.25}
        for dest, n in by_dest.values()
    }


def maintenance(server):
    """Every row of `server` in maintenance, as if published long ago."""
    Destination.objects.filter(server=server).update(admin_state="inactive")


def test_it_lists_each_server_once_with_its_sets(as_viewer, seed, redis):
    write_node(redis)
    body = as_viewer.get("/api/v1/servers/").json()
    assert body["count"] == 3
    ast1 = body["results"][0]
    assert {k: ast1[k] for k in ("name", "transport", "host", "port", "admin_state", "active_calls", "drained")} == {
        "name": "ast1",
        "transport": "udp",
        "host": "10.0.0.11",
        "port": 5080,
        "admin_state": "active",
        "active_calls": 0,
        "drained": False,  # in service: a restart drops the next call, whatever the count now
    }
    assert [(s["setid"], s["destination_id"], s["active_calls"]) for s in ast1["sets"]] == [
        (1, row(seed["ast1"], 1).pk, 0),
        (2, row(seed["ast1"], 2).pk, 0),
    ]


def test_calls_are_summed_over_every_set_and_live_proxy(as_viewer, seed, redis):
    ast1 = seed["ast1"]
    one, two = row(ast1, 1), row(ast1, 2)
    write_node(redis, "lb-a", destinations=calls(a=(one, 30), b=(two, 24)))
    write_node(redis, "lb-b", destinations=calls(a=(one, 20)))
    body = as_viewer.get(f"/api/v1/servers/{ast1.pk}/").json()
    assert body["active_calls"] == 74 and body["drained"] is False
    assert [(s["setid"], s["active_calls"]) for s in body["sets"]] == [(1, 50), (2, 24)]
    assert body["cps"] == 1.5 and body["cps_1m"] == 0.75


def test_a_set_at_zero_is_not_drained_while_another_set_carries_calls(as_viewer, as_operator, seed, redis):
    # The bug: ast3 in maintenance in set 1 counted down to 0 while set 2 still had 12 calls.
    ast3 = seed["ast3"]
    write_node(redis, destinations=calls(b=(row(ast3, 2), 12)))
    as_operator.post(f"/api/v1/destinations/{row(ast3, 1).pk}/state", {"state": "inactive"}, format="json")
    body = as_viewer.get(f"/api/v1/servers/{ast3.pk}/").json()
    assert (body["admin_state"], body["state_summary"]) == ("mixed", "maintenance in set 1 only")
    assert (body["active_calls"], body["drained"]) == (12, False)
    dest = as_viewer.get(f"/api/v1/destinations/{row(ast3, 1).pk}/").json()
    assert (dest["server"], dest["active_calls"], dest["drained"]) == (ast3.pk, 0, False)
    write_node(redis)  # the last call in set 2 ends, but set 2 still sends it new calls
    assert as_viewer.get(f"/api/v1/servers/{ast3.pk}/").json()["drained"] is False
    assert as_viewer.get(f"/api/v1/destinations/{row(ast3, 1).pk}/").json()["drained"] is False
    as_operator.post(f"/api/v1/destinations/{row(ast3, 2).pk}/state", {"state": "inactive"}, format="json")
    assert as_viewer.get(f"/api/v1/servers/{ast3.pk}/").json()["drained"] is True
    assert as_viewer.get(f"/api/v1/destinations/{row(ast3, 1).pk}/").json()["drained"] is True


def test_it_is_unknown_while_a_proxy_that_carried_calls_is_not_reporting(as_viewer, seed, redis):
    ast2 = seed["ast2"]
    maintenance(ast2)
    maintenance(seed["ast1"])
    write_node(redis, "lb-a")
    # lb-b carried 5 calls through set 2 and stopped sending heartbeats.
    redis.set(
        contract.node_calls_key("lb-b"),
        contract.encode_node_calls("lb-b", pid=1, active={row(ast2, 2).pk: 5}, unknown={}, written=time.time() - 30),
    )
    body = as_viewer.get(f"/api/v1/servers/{ast2.pk}/").json()
    assert body["active_calls"] is None and body["drained"] is None
    assert "proxy lb-b stopped reporting" in body["active_unknown"]
    assert [s["active_calls"] for s in body["sets"]] == [0, None]
    assert as_viewer.get(f"/api/v1/servers/{seed['ast1'].pk}/").json()["drained"] is True


def test_it_is_unknown_while_no_proxy_reports(as_viewer, seed, redis):
    maintenance(seed["ast1"])
    body = as_viewer.get(f"/api/v1/servers/{seed['ast1'].pk}/").json()
    assert (body["active_calls"], body["drained"]) == (None, None)
    assert body["active_unknown"] == "no proxy reporting; counts unknown"
    dest = as_viewer.get(f"/api/v1/destinations/{row(seed['ast1'], 1).pk}/").json()
    assert (dest["active_calls"], dest["drained"]) == (None, None)


def test_health_is_the_worst_of_its_rows(as_viewer, seed, redis):
    ast1 = seed["ast1"]
    write_health(redis, row(ast1, 1).pk, "up", rtt_ms=3.0)
    write_health(redis, row(ast1, 2).pk, "down", rtt_ms=None, code=None)
    body = as_viewer.get(f"/api/v1/servers/{ast1.pk}/").json()
    assert body["health"] == "down"
    write_health(redis, row(ast1, 2).pk, "up", rtt_ms=4.5)
    assert as_viewer.get(f"/api/v1/servers/{ast1.pk}/").json()["health"] == "up"


def test_an_admin_renames_a_server(as_admin, seed):
    response = as_admin.patch(f"/api/v1/servers/{seed['ast1'].pk}/", {"name": "Asterisk A"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Asterisk A"
    assert Server.objects.get(pk=seed["ast1"].pk).name_edited


def test_a_name_another_server_has_is_refused_naming_the_field(as_admin, seed):
    # The ops engineer's bug: PATCH {"name": "ast4"} answered 200 while a server was named ast4, and
    # the call lookup by that name then found the wrong one of the two.
    url = f"/api/v1/servers/{seed['ast3'].pk}/"
    for name in ("ast1", "AST1", " ast1 "):
        response = as_admin.patch(url, {"name": name}, format="json")
        assert response.status_code == 409, (name, response.content)
        (message,) = response.json()["name"]
        assert "udp 10.0.0.11:5080" in message and "choose another name" in message
    assert "compared without case" in as_admin.patch(url, {"name": "AST1"}, format="json").json()["name"][0]
    assert Server.objects.get(pk=seed["ast3"].pk).name == "ast3"
    assert Server.objects.filter(name__iexact="ast1").count() == 1
    # A server may take its own name in another case.
    response = as_admin.patch(f"/api/v1/servers/{seed['ast1'].pk}/", {"name": "AST1"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "AST1"


def test_a_field_it_cannot_change_is_refused_naming_it(as_admin, seed):
    # PATCH {"host": ...} answered 200 and changed nothing: the endpoint is what the server is.
    url = f"/api/v1/servers/{seed['ast1'].pk}/"
    response = as_admin.patch(url, {"name": "Asterisk A", "host": "10.9.9.9", "port": 5090}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert sorted(body) == ["host", "port"]
    assert "change the uri of its destinations" in body["host"][0]
    assert Server.objects.get(pk=seed["ast1"].pk).name == "ast1"  # nothing of the request was applied
    response = as_admin.patch(url, {"drained": True}, format="json")
    assert response.status_code == 400 and "Read-only" in response.json()["drained"][0]
    response = as_admin.patch(url, {"admin_state": "inactive"}, format="json")
    assert response.status_code == 400 and "/state" in response.json()["admin_state"][0]
    response = as_admin.patch(url, {"nmae": "Asterisk A"}, format="json")
    assert response.status_code == 400 and response.json() == {"nmae": ["No such field here; the fields it takes: name."]}
    assert Server.objects.get(pk=seed["ast1"].pk).host == "10.0.0.11"


def test_a_state_change_refuses_what_it_cannot_do(as_operator, seed):
    # {"sets": [1]} would have put the server into maintenance in every set without a word.
    response = as_operator.post(f"/api/v1/servers/{seed['ast1'].pk}/state", {"state": "inactive", "sets": [1]}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["sets"]
    assert set(seed["ast1"].destinations.values_list("admin_state", flat=True)) == {"active"}


def test_it_refuses_an_operator_a_rename(as_operator, seed):
    response = as_operator.patch(f"/api/v1/servers/{seed['ast1'].pk}/", {"name": "x"}, format="json")
    assert response.status_code == 403 and "admin role" in response.json()["detail"]


def test_a_name_too_long_names_the_field(as_admin, seed):
    response = as_admin.patch(f"/api/v1/servers/{seed['ast1'].pk}/", {"name": "x" * 101}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["name"]


def test_it_requires_authentication(anonymous, seed):
    assert anonymous.get("/api/v1/servers/").status_code == 401


def test_it_refuses_a_user_without_a_role(as_nobody, seed):
    assert as_nobody.get("/api/v1/servers/").status_code == 403


def test_unknown_server_is_404(as_viewer, db):
    assert as_viewer.get("/api/v1/servers/999999/").status_code == 404


def test_servers_are_not_made_or_deleted_through_the_api(as_admin, seed):
    assert as_admin.post("/api/v1/servers/", {"name": "x"}, format="json").status_code == 405
    assert as_admin.delete(f"/api/v1/servers/{seed['ast1'].pk}/").status_code == 405
    assert as_admin.put(f"/api/v1/servers/{seed['ast1'].pk}/", {"name": "x"}, format="json").status_code == 405


def test_destinations_and_events_filter_by_server(as_operator, seed):
    ast1 = seed["ast1"]
    body = as_operator.get("/api/v1/destinations/", {"server": ast1.pk}).json()
    assert sorted(d["set"] for d in body["results"]) == [1, 2]
    as_operator.post(f"/api/v1/servers/{ast1.pk}/state", {"state": "inactive"}, format="json")
    events = as_operator.get("/api/v1/events/", {"server": ast1.pk}).json()["results"]
    assert [(e["server"], e["destination"], e["new"]) for e in events] == [(ast1.pk, None, "inactive")]
