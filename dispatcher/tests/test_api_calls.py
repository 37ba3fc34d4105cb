"""GET /api/v1/calls/: call records filtered by Call-ID, number, server, carrier, final code and time,
attempts in the order tried with server names, duration null while up, and an honest word when the
scan could not cover the whole range."""

import time

import pytest

from dispatcher import calls as reader
from dispatcher.tests.calls_support import add_end, add_setup

URL = "/api/v1/calls/"


@pytest.fixture
def log(redis, table):
    d1, d2, d3 = table["dests"][:3]
    s1, s2 = d1.server_id, d2.server_id
    now = time.time()
    add_setup(redis, "fo-1@x", [(d1, s1, 503, 12), (d2, s2, 200, 30)], 200, from_user="+15551234", started=now - 50)
    add_setup(redis, "busy-1", [(d3, d3.server_id, 486, 5)], 486, carrier="carrier-a", started=now - 40)
    add_setup(redis, "up-1", [(d2, s2, 200, 9)], 200, carrier="carrier-a", to_user="7777", started=now - 30)
    add_end(redis, "fo-1@x", btag="callee-tag", ended=now - 8)
    return table


def test_it_finds_a_failed_over_call_by_call_id_with_both_attempts(as_viewer, log):
    body = as_viewer.get(URL, {"call_id": "fo-1@x"}).json()
    (call,) = body["results"]
    assert [(a["server"], a["code"], a["ms"]) for a in call["attempts"]] == [("ast1", 503, 12), ("ast2", 200, 30)]
    assert call["final_code"] == 200 and call["setup_ms"] == 42 and call["state"] == "ended"
    assert call["ended_by"] == "callee" and 41 < call["duration_s"] < 43
    assert body["truncated"] is False and body["searched_until"] is None


def test_a_call_still_up_has_no_duration(as_viewer, log):
    (call,) = as_viewer.get(URL, {"call_id": "up-1"}).json()["results"]
    assert call["state"] == "up" and call["duration_s"] is None and call["ended_by"] is None


def test_it_filters_by_number_server_carrier_code_and_time(as_viewer, log):
    def ids(**q):
        return [c["call_id"] for c in as_viewer.get(URL, q).json()["results"]]

    assert ids() == ["up-1", "busy-1", "fo-1@x"]  # newest first
    assert ids(number="5551234") == ["fo-1@x"]
    assert ids(number="7777") == ["up-1"]
    assert ids(server="ast1") == ["fo-1@x"]
    assert ids(server=str(log["dests"][1].server_id)) == ["up-1", "fo-1@x"]
    assert ids(carrier="CARRIER-A") == ["up-1", "busy-1"]
    assert ids(final_code="4xx") == ["busy-1"]
    assert ids(final_code="200") == ["up-1", "fo-1@x"]
    assert ids(since="2999-01-01T00:00:00Z") == []
    assert ids(until="2000-01-01T00:00:00Z") == []
    assert ids(limit=1) == ["up-1"]
    assert as_viewer.get(URL, {"limit": 1}).json()["more"] is True


def test_bad_filters_name_their_field(as_viewer, log):
    for query, name in (
        ({"server": "nope"}, "server"),
        ({"final_code": "abc"}, "final_code"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ):
        response = as_viewer.get(URL, query)
        assert response.status_code == 400 and name in response.json(), query


def test_one_call_by_call_id(as_viewer, log):
    call = as_viewer.get(f"{URL}fo-1@x/").json()
    assert call["call_id"] == "fo-1@x" and len(call["attempts"]) == 2
    assert as_viewer.get(f"{URL}nothing-like-it/").status_code == 404


def test_a_scan_that_stops_early_says_how_far_it_looked(redis, log):
    for i in range(30):
        add_setup(redis, f"filler-{i}", [], 503)
    result = reader.search(redis, reader.Filters(call_id="fo-1@x"), scan_max=10, page=5)
    assert result.calls == [] and result.truncated and result.searched_until is not None


def test_a_server_filter_that_names_two_servers_is_refused(as_viewer, log):
    # A name is unique, but may be another server's id: say so, rather than search one of the two.
    from dispatcher.models import Server

    first, second = (d.server_id for d in log["dests"][:2])
    Server.objects.filter(pk=second).update(name=str(first))
    response = as_viewer.get(URL, {"server": str(first)})
    assert response.status_code == 400
    (message,) = response.json()["server"]
    assert f"is more than one server (id {first}, 'ast1' (udp 127.0.0.1:5081); id {second}, '{first}'" in message
    assert [c["call_id"] for c in as_viewer.get(URL, {"server": str(second)}).json()["results"]] == ["up-1", "fo-1@x"]


def test_a_duid_two_boxes_share_names_one_server(as_viewer, log):
    # The table's set 2 lists another box under DUID ast1: its server is named by its address, so the
    # lookup by "ast1" is set 1's box, whichever of the two was made first.
    from dispatcher.models import Server

    assert Server.objects.filter(name__iexact="ast1").count() == 1
    assert Server.objects.get(port=5091).name == "127.0.0.1:5091"


def test_a_deleted_server_reads_as_its_uri(as_viewer, log):
    d3 = log["dests"][2]
    uri = d3.uri
    d3.delete()
    (call,) = as_viewer.get(URL, {"call_id": "busy-1"}).json()["results"]
    assert call["attempts"][0]["uri"] == uri
    assert call["attempts"][0]["server"] in (uri, "ast3")  # the server row may outlive its destination


def test_it_requires_authentication_and_a_role(anonymous, as_nobody, db):
    assert anonymous.get(URL).status_code == 401
    assert as_nobody.get(URL).status_code == 403


def test_it_is_read_only(as_admin, db):
    assert as_admin.post(URL, {}, format="json").status_code == 405


def test_an_answered_call_without_an_end_past_the_dialog_timeout_is_unknown_not_up(as_viewer, redis, table):
    d1 = table["dests"][0]
    add_setup(redis, "old-1", [(d1, d1.server_id, 200, 5)], 200, started=time.time() - 4 * 3600)
    (call,) = as_viewer.get(URL, {"call_id": "old-1"}).json()["results"]
    assert call["state"] == "unknown" and call["duration_s"] is None
