"""The encoder the web side uses and the decoder the proxy uses agree, field by field."""

import json

from lbcore import contract


def sample_sets():
    return [
        {
            "setid": 2,
            "name": "inbound",
            "algorithm": 9,
            "failover_codes": [500, 503],
            "destinations": [
                {
                    "id": 7,
                    "setid": 2,
                    "uri": "sip:[::1]:5081;transport=tcp",
                    "host": "::1",
                    "port": 5081,
                    "transport": "tcp",
                    "priority": 10,
                    "weight": 40,
                    "rweight": 0,
                    "duid": "ast1",
                    "maxload": 120,
                    "attrs": "weight=40;duid=ast1;x=y",
                    "admin_state": "inactive",
                    "probing": True,
                },
            ],
        }
    ]


def test_table_round_trips():
    raw = contract.encode_table(5, sample_sets(), [{"network": "203.0.113.0/24", "setid": 2}], {"fr_timer_ms": 3000})
    table = contract.decode_table(raw)
    assert table.version == 5
    dest = table.sets[2].destinations[0]
    assert dest == contract.DestinationSpec(
        id=7,
        setid=2,
        uri="sip:[::1]:5081;transport=tcp",
        host="::1",
        port=5081,
        transport="tcp",
        priority=10,
        weight=40,
        rweight=0,
        duid="ast1",
        maxload=120,
        attrs="weight=40;duid=ast1;x=y",
        admin_state="inactive",
        probing=True,
    )
    assert table.sets[2].algorithm == 9 and table.sets[2].failover_codes == (500, 503)
    assert table.source_rules == (contract.SourceRuleSpec("203.0.113.0/24", 2, "203.0.113.0/24"),)  # unnamed: its network
    assert table.settings["fr_timer_ms"] == 3000
    assert table.settings["fr_inv_timer_ms"] == contract.DEFAULT_SETTINGS["fr_inv_timer_ms"]
    assert table.destination(7) is dest and table.destination(8) is None


def test_a_newer_publisher_field_does_not_break_an_older_proxy():
    sets = sample_sets()
    sets[0]["destinations"][0]["future_field"] = 1
    doc = json.loads(contract.encode_table(1, sets, [], {}))
    assert contract.decode_table(json.dumps(doc)).sets[2].destinations[0].id == 7


def test_health_and_events_round_trip():
    health = contract.Health(state="down", rtt_ms=None, since=1000.5, fails=3, code=None, reason="timeout after 3 probes")
    assert contract.decode_health(contract.encode_health(health)) == health
    assert contract.decode_event(contract.health_event(7)) == ("health", 7)
    assert contract.decode_event(contract.table_event(9)) == ("table", 9)
    assert contract.decode_event("not json") is None
    assert contract.decode_event('{"type": "other"}') is None
    assert contract.decode_event("[1]") is None


def test_node_round_trips():
    raw = contract.encode_node(
        "lb1",
        table_version=4,
        started=1.0,
        pid=99,
        listen=["udp:127.0.0.1:5060"],
        totals={"invites": 3},
        destinations={7: {"active": 2, "cps": 0.5}},
        heartbeat=2.0,
    )
    node = contract.decode_node(raw)
    assert node["destinations"] == {7: {"active": 2, "cps": 0.5}} and node["table_version"] == 4


def test_a_missing_null_or_zero_setting_is_the_default():
    assert contract.setting({}, "retry_after_s") == contract.DEFAULT_SETTINGS["retry_after_s"]
    assert contract.setting({"retry_after_s": None}, "retry_after_s") == contract.DEFAULT_SETTINGS["retry_after_s"]
    assert contract.setting({"retry_after_s": 9}, "retry_after_s") == 9


def test_a_destination_names_its_server_and_a_table_from_before_servers_still_decodes():
    sets = sample_sets()
    sets[0]["destinations"][0]["server_id"] = 3
    assert contract.decode_table(contract.encode_table(1, sets, [], {})).sets[2].destinations[0].server_id == 3
    assert contract.decode_table(contract.encode_table(1, sample_sets(), [], {})).sets[2].destinations[0].server_id is None
