"""propagation_ms: how long the table a proxy routes from took to reach it, from its heartbeat."""

from lbcore.rules import propagation_ms


def test_it_is_applied_minus_published_in_ms():
    assert round(propagation_ms({"table_published_at": 100.0, "table_applied_at": 100.0123}), 1) == 12.3


def test_it_is_unknown_from_a_proxy_that_does_not_say():
    assert propagation_ms({}) is None
    assert propagation_ms({"table_applied_at": 5.0, "table_published_at": None}) is None


def test_clock_skew_never_makes_it_negative():
    assert propagation_ms({"table_published_at": 100.0, "table_applied_at": 99.998}) == 0.0
