"""JSON-RPC dispatcher.add, dispatcher.remove, dispatcher.hash and dispatcher.oclist in Kamailio's
shapes and fault texts (dispatcher.c dispatcher_rpc_*); add and remove are saved and audited."""

import pytest

from dispatcher.models import Destination, DispatcherSet, StateEvent
from dispatcher.tests.test_rpc import call
from lbcore import contract


def _result(response):
    assert response.status_code == 200, response.content
    return response.json()["result"]


def _error(response):
    assert response.status_code == 200, response.content
    return response.json()["error"]


def test_add_saves_audits_and_reads_flags_and_attrs_as_a_list_line(as_admin, admin_user, table, redis):
    params = [1, "sip:127.0.0.1:5084", 8 + 32, 7, "weight=40;duid=ast4;ping_from=sip:ping@127.0.0.1"]
    assert _result(call(as_admin, "dispatcher.add", params)) == "Ok. Dispatcher destination added."
    dest = Destination.objects.get(uri="sip:127.0.0.1:5084")
    assert (dest.dset.setid, dest.flags, dest.priority, dest.weight, dest.duid) == (1, 40, 7, 40, "ast4")
    assert "ping_from=sip:ping@127.0.0.1" in dest.attrs
    event = StateEvent.objects.get(destination=dest)
    assert (event.kind, event.cause, event.actor, event.reason) == ("config", "api", admin_user, "JSON-RPC dispatcher.add")


def test_add_creates_the_set_as_kamailio_does(as_admin, table, redis):
    _result(call(as_admin, "dispatcher.add", [9, "sip:127.0.0.1:5099"]))
    assert DispatcherSet.objects.get(setid=9).destinations.get().uri == "sip:127.0.0.1:5099"


@pytest.mark.parametrize(
    "params, words",
    [
        ([1, "sip:127.0.0.1:5081"], "already in set 1"),
        ([1, "http://example.com"], "not a valid SIP URI"),
        ([1, "sip:127.0.0.1:5085", 0, 0, "rweight=500"], "rweight must be 1-100"),
        ([1, "sip:127.0.0.1:5085", 0, 0, "weight=2000000"], "weight"),  # the model's limit, as the form says it
        ([1, "sip:127.0.0.1:5085", 0, 0, "ping_from=not a uri"], "ping_from"),
        ([1, "sip:127.0.0.1:5085", 0, 0, "socket=udp:example.com:5060"], "not an IP address"),
        ([1, "sip:127.0.0.1:5085", 0, 0, "duid=ast1"], "DUID"),
    ],
)
def test_add_refuses_what_the_form_and_import_refuse_with_kamailios_fault(as_admin, table, redis, params, words):
    error = _error(call(as_admin, "dispatcher.add", params))
    assert (error["code"], error["message"]) == (500, "Adding dispatcher dst failed") and words in error["data"]
    assert Destination.objects.count() == 4 and not StateEvent.objects.exists()


def test_add_with_too_few_parameters_is_invalid_parameters(as_admin, table):
    assert _error(call(as_admin, "dispatcher.add", [1]))["message"] == "Invalid Parameters"


def test_add_and_remove_need_an_admin_with_a_write_token(as_operator, as_readonly_admin, table):
    assert call(as_operator, "dispatcher.add", [1, "sip:127.0.0.1:5085"]).status_code == 403
    assert call(as_readonly_admin, "dispatcher.remove", [1, "sip:127.0.0.1:5081"]).status_code == 403
    assert Destination.objects.count() == 4


def test_remove_deletes_audited_and_keeps_the_set(as_admin, table, redis):
    assert _result(call(as_admin, "dispatcher.remove", [2, "sip:127.0.0.1:5091"])) == "Ok. Dispatcher destination removed."
    assert not Destination.objects.filter(dset__setid=2).exists() and DispatcherSet.objects.filter(setid=2).exists()
    assert StateEvent.objects.get().subject.startswith("deleted destination")
    error = _error(call(as_admin, "dispatcher.remove", [2, "sip:127.0.0.1:5091"]))
    assert (error["code"], error["message"]) == (500, "Removing dispatcher dst failed")


def test_hash_is_kamailios_number_and_slot(as_viewer, db):
    # hashids from dispatch.c's ds_get_hash compiled with gcc on x86-64
    assert _result(call(as_viewer, "dispatcher.hash", [4, "a84b4c76e66710@pc33.atlanta.com"])) == {
        "hashid": 2175018094,
        "slot": 2175018094 % 4,
    }
    assert _result(call(as_viewer, "dispatcher.hash", [0, "user", "example.com"])) == {"hashid": 1687492807, "slot": 0}
    assert _result(call(as_viewer, "dispatcher.hash", [3, "héllo"]))["hashid"] == 1800151102
    assert _error(call(as_viewer, "dispatcher.hash", [3]))["message"] == "Invalid Parameters"


def test_hash_with_a_group_says_which_destination_takes_the_key_and_skips_an_unusable_one(as_viewer, table, redis):
    first = _result(call(as_viewer, "dispatcher.hash", [0, "call-1@host", "", 1]))
    assert sorted(first["ORDER"]) == ["sip:127.0.0.1:5081", "sip:127.0.0.1:5082", "sip:127.0.0.1:5083"]
    assert first["DEST"] == first["ORDER"][0]
    Destination.objects.filter(uri=first["DEST"]).update(admin_state="inactive")
    second = _result(call(as_viewer, "dispatcher.hash", [0, "call-1@host", "", 1]))
    assert second["ORDER"] == first["ORDER"][1:]  # rendezvous: the others keep their order
    assert _error(call(as_viewer, "dispatcher.hash", [0, "x", "", 7]))["message"] == "Destination Group Not Found"


def test_oclist_has_kamailios_rows(as_viewer, table, redis):
    d1 = table["dests"][0]
    redis.hset(contract.HEALTH_KEY, str(d1.pk), contract.encode_health(contract.Health(state="down", fails=3)))
    rows = _result(call(as_viewer, "dispatcher.oclist", [1]))
    assert [r["uri"] for r in rows] == ["sip:127.0.0.1:5081", "sip:127.0.0.1:5082", "sip:127.0.0.1:5083"]
    assert rows[0] == {
        "group": 1,
        "uri": "sip:127.0.0.1:5081",
        "flags": contract.FLAG_INACTIVE | contract.FLAG_PROBING,  # down by probes; probing mode 1 probes it
        "priority": 10,
        "ocrate": 0,
        "ocidx": 0,
        "ocseq": 0,
        "octime_sec": 0,
        "octime_usec": 0,
        "ocmin": 0,
        "ocmax": 100,
    }
    error = _error(call(as_viewer, "dispatcher.oclist", [5]))
    assert (error["code"], error["message"]) == (404, "Destination Group Not Found")
