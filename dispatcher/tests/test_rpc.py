"""JSON-RPC /rpc speaks Kamailio's dispatcher RPC: same methods, positional params, same result shapes."""

import json

import pytest

from dispatcher.models import Destination, ProbeSettings, StateEvent
from lbcore import contract

URL = "/rpc"


def call(client, method, params=None, request_id=1, **extra):
    body = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        body["params"] = params
    return client.post(URL, json.dumps(body), content_type="application/json", **extra)


# The shape of `kamcmd dispatcher.list` through jsonrpcs, from ds_rpc_print_set() in Kamailio's
# src/modules/dispatcher/dispatcher.c: key -> type, per level. ATTRS appears only when the line has
# attributes; LATENCY only with ds_ping_latency_stats=1 (off in the seed's kamailio.cfg), so not here.
KAMAILIO_TOP = {"NRSETS": int, "RECORDS": list}
KAMAILIO_SET = {"ID": int, "TARGETS": list}
KAMAILIO_DEST = {"URI": str, "FLAGS": str, "PRIORITY": int}
KAMAILIO_ATTRS = {
    "BODY": str,
    "DUID": str,
    "PROBING_COUNT": int,
    "MAXLOAD": int,
    "WEIGHT": int,
    "RWEIGHT": int,
    "SOCKET": str,
    "SOCKNAME": str,
    "OBPROXY": str,
    "OCMIN": int,
    "OCMAX": int,
}


def assert_shape(doc, shape):
    assert set(doc) == set(shape), f"keys {sorted(doc)} != Kamailio's {sorted(shape)}"
    for key, kind in shape.items():
        assert isinstance(doc[key], kind) and not isinstance(doc[key], bool), (
            f"{key} is {type(doc[key]).__name__}, not {kind.__name__}"
        )


def test_dispatcher_list_has_kamailios_shape_field_by_field(as_viewer, table, redis):
    Destination.objects.create(dset=table["sets"][2], uri="sip:127.0.0.1:5092", priority=3)  # no attrs: no ATTRS
    response = call(as_viewer, "dispatcher.list")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jsonrpc", "result", "id"} and body["jsonrpc"] == "2.0" and body["id"] == 1
    result = body["result"]
    assert_shape(result, KAMAILIO_TOP)
    assert result["NRSETS"] == len(result["RECORDS"]) == 2
    for record in result["RECORDS"]:
        assert list(record) == ["SET"]
        assert_shape(record["SET"], KAMAILIO_SET)
        for target in record["SET"]["TARGETS"]:
            assert list(target) == ["DEST"]
            dest = target["DEST"]
            if "ATTRS" in dest:
                assert_shape(dest["ATTRS"], KAMAILIO_ATTRS)
                dest = {k: v for k, v in dest.items() if k != "ATTRS"}
            assert_shape(dest, KAMAILIO_DEST)
    one, two = (r["SET"] for r in result["RECORDS"])
    assert one["ID"] == 1 and [t["DEST"]["URI"] for t in one["TARGETS"]] == [
        "sip:127.0.0.1:5081",
        "sip:127.0.0.1:5082",
        "sip:127.0.0.1:5083",
    ]
    first = one["TARGETS"][0]["DEST"]
    assert first["PRIORITY"] == 10 and first["FLAGS"] == "AP"  # probing mode 1 probes every destination
    assert first["ATTRS"] == {
        "BODY": "weight=50;duid=ast1",
        "DUID": "ast1",
        "PROBING_COUNT": 0,
        "MAXLOAD": 0,
        "WEIGHT": 50,
        "RWEIGHT": 0,
        "SOCKET": "",
        "SOCKNAME": "",
        "OBPROXY": "",
        "OCMIN": 0,
        "OCMAX": 100,
    }
    bare = two["TARGETS"][0]["DEST"]
    assert bare == {"URI": "sip:127.0.0.1:5092", "FLAGS": "AP", "PRIORITY": 3}


def test_flags_read_as_kamcmd_prints_them(as_viewer, table, redis):
    d1, d2, d3, _ = table["dests"]
    Destination.objects.filter(pk=d1.pk).update(admin_state="inactive")
    Destination.objects.filter(pk=d2.pk).update(admin_state="disabled")
    redis.hset(contract.HEALTH_KEY, str(d3.pk), contract.encode_health(contract.Health(state="down", fails=3)))
    settings = ProbeSettings.load()
    settings.probing_mode = 0
    settings.save()
    Destination.objects.filter(pk=d1.pk).update(probing=True)
    targets = call(as_viewer, "dispatcher.list").json()["result"]["RECORDS"][0]["SET"]["TARGETS"]
    flags = {t["DEST"]["URI"]: t["DEST"]["FLAGS"] for t in targets}
    assert flags == {d1.uri: "IP", d2.uri: "DX", d3.uri: "IX"}


def test_short_and_full_modes(as_viewer, table, redis):
    short = call(as_viewer, "dispatcher.list", ["short"]).json()["result"]["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
    assert set(short) == {"URI", "FLAGS", "PRIORITY"}
    full = call(as_viewer, "dispatcher.list", ["full"]).json()["result"]["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
    assert {"HOST", "IPADDR", "PORT", "PROTOID", "ATTRS", "LATENCY", "RUNTIME"} <= set(full)
    assert full["PORT"] == 5081 and set(full["LATENCY"]) == {"AVG", "STD", "EST", "MAX", "TIMEOUT"}


def test_an_empty_table_is_kamailios_fault(as_viewer, redis):
    body = call(as_viewer, "dispatcher.list").json()
    assert body["error"]["code"] == 500 and body["error"]["message"] == "No Destination Sets"


def test_set_state_by_uri_is_audited_with_cause_api(as_operator, operator, table):
    response = call(as_operator, "dispatcher.set_state", ["i", 1, "sip:127.0.0.1:5083"])
    assert response.status_code == 200 and response.json()["result"] == "Ok. Dispatcher state updated."
    dest = Destination.objects.get(uri="sip:127.0.0.1:5083", dset__setid=1)
    assert dest.admin_state == "inactive"
    event = StateEvent.objects.get(destination=dest)
    assert (event.kind, event.new, event.cause, event.actor) == ("admin", "inactive", "api", operator)
    assert "dispatcher.set_state" in event.reason


def test_set_state_takes_kamcmd_spellings(as_operator, table):
    assert "result" in call(as_operator, "dispatcher.set_state", ["ip", "1", "SIP:127.0.0.1:5081"]).json()
    assert Destination.objects.get(pk=table["dests"][0].pk).admin_state == "inactive"
    call(as_operator, "dispatcher.set_state", ["2", 1, "all"])
    assert set(Destination.objects.filter(dset__setid=1).values_list("admin_state", flat=True)) == {"disabled"}
    call(as_operator, "dispatcher.set_state", ["A", 1, "all"])
    assert set(Destination.objects.filter(dset__setid=1).values_list("admin_state", flat=True)) == {"active"}


def test_set_duid_state(as_operator, table):
    call(as_operator, "dispatcher.set_duid_state", ["i", 2, "ast1"])
    assert Destination.objects.get(dset__setid=2).admin_state == "inactive"
    assert Destination.objects.get(dset__setid=1, duid="ast1").admin_state == "active"


@pytest.mark.parametrize(
    "params, message, words",
    [
        (["x", 1, "all"], "Unknown State Value", "must be a, i or d"),
        (["t", 1, "all"], "Unknown State Value", "trying"),
        (["i", "one", "all"], "Invalid Parameters", "parameter 2 (group) must be an integer"),
        (["i", 1], "Invalid Parameters", "parameter 3 (address) is missing"),
        ([], "Invalid Parameters", "parameter 1 (state) is missing"),
        (["i", 9, "all"], "State Update Failed", "there is no set 9"),
        (["i", 1, "sip:127.0.0.1:5999"], "State Update Failed", "no sip:127.0.0.1:5999 in set 1"),
    ],
)
def test_bad_params_are_kamailio_faults(as_operator, table, params, message, words):
    response = call(as_operator, "dispatcher.set_state", params)
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == 500 and error["message"] == message and words in error["data"]
    assert not StateEvent.objects.exists()


def test_set_state_needs_an_operator_with_a_write_token(as_viewer, as_readonly_operator, table):
    response = call(as_viewer, "dispatcher.set_state", ["i", 1, "all"])
    assert response.status_code == 403 and "operator role" in response.json()["error"]["data"]
    response = call(as_readonly_operator, "dispatcher.set_state", ["i", 1, "all"])
    assert response.status_code == 403 and "read-only" in response.json()["error"]["data"]
    assert not StateEvent.objects.exists()


def test_it_requires_authentication(anonymous, as_nobody, table):
    response = call(anonymous, "dispatcher.list")
    assert response.status_code == 401 and response.json()["error"]["code"] == 401
    response = call(as_nobody, "dispatcher.list")
    assert response.status_code == 403


def test_reload_republishes_the_table(as_operator, as_readonly_admin, table, redis):
    response = call(as_operator, "dispatcher.reload")
    assert response.json()["result"] == "Ok. Dispatcher successfully reloaded."
    published = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert sorted(published.sets) == [1, 2]
    assert call(as_readonly_admin, "dispatcher.reload").status_code == 403


def test_ping_active_reads_and_sets_the_probing_switch(as_viewer, as_admin, as_operator, db, redis):
    assert call(as_viewer, "dispatcher.ping_active").json()["result"] == {"OldPingState": 1}
    assert call(as_operator, "dispatcher.ping_active", [0]).status_code == 403
    assert call(as_admin, "dispatcher.ping_active", [0]).json()["result"] == {"NewPingState": 0, "OldPingState": 1}
    assert redis.get(contract.PING_ACTIVE_KEY) == b"0"
    assert StateEvent.objects.get().cause == "api"
    assert call(as_admin, "dispatcher.ping_active", [7]).json()["error"]["message"] == "Invalid Parameters"


def test_protocol_errors_are_json_rpc_errors(as_viewer, db):
    def error(body):
        response = as_viewer.post(URL, body, content_type="application/json")
        assert response.status_code == 200
        return response.json()["error"]

    assert error("{not json")["code"] == -32700
    assert error("[]")["code"] == -32600
    assert error('"dispatcher.list"')["code"] == -32600
    assert error('{"jsonrpc": "2.0", "id": 1}')["code"] == -32600
    assert error('{"jsonrpc": "2.0", "method": "dispatcher.list", "params": 5, "id": 1}')["code"] == -32600
    unknown = error('{"jsonrpc": "2.0", "method": "core.shutdown", "id": 1}')
    assert unknown["code"] == -32601 and unknown["message"] == "Method Not Found"


def test_only_post_is_allowed(as_viewer):
    assert as_viewer.get(URL).status_code == 405


def test_an_unknown_rpc_path_is_404(as_viewer):
    assert as_viewer.post("/rpc/extra", "{}", content_type="application/json").status_code == 404
