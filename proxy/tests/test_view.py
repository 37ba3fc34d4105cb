from lbcore.contract import DEFAULT_SETTINGS, DestinationSpec, SetSpec, SourceRuleSpec, Table
from proxy.view import TableView


def _table(**settings):
    d = DestinationSpec(id=1, setid=1, uri="sip:127.0.0.1:5081", host="127.0.0.1", port=5081, transport="udp")
    sets = {1: SetSpec(1, "out", 4, (500, 503), (d,)), 2: SetSpec(2, "in", 4, (500, 503), ())}
    rules = (SourceRuleSpec("203.0.113.0/24", 2), SourceRuleSpec("203.0.113.10/32", 1))
    return Table(
        version=3, sets=sets, source_rules=rules, settings={"trusted_networks": ["127.0.0.0/8"], "default_set": None, **settings}
    )


def test_it_picks_the_longest_source_rule():
    view = TableView(_table())
    assert view.set_for("203.0.113.10") == 1
    assert view.set_for("203.0.113.11") == 2


def test_a_source_rule_is_a_carrier_and_unmatched_traffic_is_other():
    view = TableView(_table())
    assert view.route_for("203.0.113.10") == (1, "203.0.113.10/32")  # no carrier name published: the network
    assert view.route_for("127.0.0.1") == (1, "other")
    named = Table(version=1, sets={}, source_rules=(SourceRuleSpec("198.51.100.0/24", 2, "Carrier A"),), settings={})
    assert TableView(named).route_for("198.51.100.7") == (2, "Carrier A")


def test_it_falls_back_to_the_default_set():
    assert TableView(_table()).set_for("127.0.0.1") == 1  # lowest set when none is configured
    assert TableView(_table(default_set=2)).set_for("127.0.0.1") == 2


def test_it_trusts_source_rules_and_trusted_networks_only():
    view = TableView(_table())
    assert view.is_trusted("127.0.0.1")
    assert view.is_trusted("203.0.113.77")
    assert not view.is_trusted("198.51.100.1")
    assert not view.is_trusted("not-an-ip")


def test_a_table_without_settings_gets_the_contracts_defaults():
    view = TableView(Table(version=1, sets={}, source_rules=(), settings={"max_transactions": None}))
    assert view.fr_timer == DEFAULT_SETTINGS["fr_timer_ms"] / 1000
    assert view.suspect_hold == DEFAULT_SETTINGS["suspect_hold_ms"] / 1000
    assert view.max_transactions == DEFAULT_SETTINGS["max_transactions"]
    assert view.retry_after == (b"Retry-After: %d" % DEFAULT_SETTINGS["retry_after_s"],)
