"""The carriers' figures summed over proxies (dispatcher.carriers), from a real Redis: every rule's carrier
has a row (0 before its first call), "other" too, and figures that lack a proxy say so and why."""

import time

from dispatcher.carriers import carrier_figures
from dispatcher.tests.carrier_support import figures, two_carriers, write_carriers


def test_every_carrier_a_rule_defines_has_a_row_with_0_before_its_first_call(db, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {})
    f = carrier_figures()
    assert [r.name for r in f.rows] == ["Carrier A", "Carrier B", "other"]
    a = f.row("Carrier A")
    assert a.networks == ["203.0.113.10/32", "203.0.113.11/32"] and a.setids == [2]
    assert (a.calls, a.answered, a.answer_rate, a.setup_p50) == (0, 0, None, None)
    assert not f.partial


def test_two_live_proxies_add_up_and_quantiles_come_from_their_merged_histograms(db, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(10, 8, {"5xx": 2}, cps=1.5, setup=[0.04] * 10)})
    write_carriers(redis, "lb-b", {"Carrier A": figures(10, 9, {"timeout": 1}, cps=0.5, setup=[2.5] * 10)})
    a = carrier_figures().row("Carrier A")
    assert (a.calls, a.answered, a.answer_rate) == (20, 17, 0.85)
    assert a.failed == {"4xx": 0, "5xx": 2, "6xx": 0, "timeout": 1} and a.failures == 3
    assert a.cps == 2.0
    assert a.setup_p50 == (0.0, 0.05) and a.setup_p95 == (2, 3)  # the buckets: no point inside one is known


def test_a_stale_heartbeat_makes_the_figures_partial_and_says_which_proxy(db, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(4, 4)})
    write_carriers(redis, "lb-b", {"Carrier A": figures(6, 3)}, heartbeat=time.time() - 20)
    f = carrier_figures()
    assert f.row("Carrier A").calls == 10
    assert f.partial and any("proxy lb-b last reported 20s ago" in why for why in f.why_partial)


def test_a_proxy_that_stopped_reporting_is_counted_until_then_and_named(db, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(4, 4, cps=1.0)})
    write_carriers(redis, "lb-b", {"Carrier A": figures(6, 3, cps=9.0)}, heartbeat=time.time() - 120, live=False)
    f = carrier_figures()
    a = f.row("Carrier A")
    assert (a.calls, a.answered) == (10, 7)
    assert a.cps == 1.0  # a rate from two minutes ago is not "now"
    assert a.recent["calls"] == 4
    assert f.partial and any(why.startswith("proxy lb-b stopped reporting at ") for why in f.why_partial)
    assert [(n.name, n.reporting) for n in f.nodes] == [("lb-a", True), ("lb-b", False)]


def test_a_restart_says_the_previous_process_counts_are_gone(db, redis):
    two_carriers()
    now = time.time()
    write_carriers(
        redis, "lb-a", {"Carrier A": figures(1, 1)}, started=now - 5, previous={"started": now - 900, "written": now - 6}
    )
    f = carrier_figures()
    assert f.partial and "proxy lb-a restarted at" in f.why_partial[0] and "are gone" in f.why_partial[0]


def test_no_proxy_reporting_leaves_the_rate_unknown(db, redis):
    two_carriers()
    f = carrier_figures()
    assert not f.cps_known and f.partial and "no proxy is reporting" in f.why_partial[0]


def test_calls_counted_under_a_rule_since_removed_still_show(db, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Old carrier": figures(3, 1)})
    row = carrier_figures().row("Old carrier")
    assert row.calls == 3 and not row.defined


def test_redis_away_is_said_not_raised(db, settings):
    two_carriers()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    f = carrier_figures()
    assert f.partial and "Redis is not reachable" in f.why_partial[0]
    assert f.row("Carrier A").calls == 0
