"""carrier_findings: what the alert engine is told about each carrier, from the recent window only."""

import pytest

from dispatcher.carriers import carrier_figures, carrier_findings
from dispatcher.live import snapshot
from dispatcher.tests.carrier_support import figures, two_carriers, write_carriers

RECENT = {"calls": 20, "answered": 8, "failed": 10}  # 40 % answered, 50 % failed


@pytest.fixture
def busy(db, redis):
    two_carriers()
    # Carrier A's day was fine; its last minutes are not. Carrier B: fine now. other: too few calls.
    write_carriers(redis, "lb-a", {"Carrier A": figures(1000, 950, recent=RECENT)})
    write_carriers(redis, "lb-b", {"Carrier B": figures(50, 45, recent={"calls": 10, "answered": 9, "failed": 1})})
    write_carriers(redis, "lb-c", {"other": figures(3, 0, {"5xx": 3})})


def test_a_carrier_whose_recent_answer_rate_is_low_fires_whatever_its_totals(busy):
    found = {key: rest for key, *rest in carrier_findings(snapshot(), 0.6, 0.3, 5)}
    firing, title, text, link = found["carrier:Carrier A"]
    assert firing
    assert title == "Carrier A: 40% answered, 50% failed"
    assert "20 calls, 8 answered (40%), 10 failed (50%)" in text and "last 5 minutes" in text
    assert link == "/carriers/#carrier-carrier-a"


def test_a_carrier_within_its_thresholds_is_reported_not_firing(busy):
    found = {key: firing for key, firing, *_ in carrier_findings(snapshot(), 0.6, 0.3, 5)}
    assert found["carrier:Carrier B"] is False


def test_a_carrier_under_min_calls_gives_no_finding(busy):
    keys = [key for key, *_ in carrier_findings(snapshot(), 0.6, 0.3, 5)]
    assert "carrier:other" not in keys
    assert "carrier:other" in [key for key, *_ in carrier_findings(snapshot(), 0.6, 0.3, 3)]


def test_a_high_failure_rate_alone_fires(busy):
    found = {key: rest for key, *rest in carrier_findings(snapshot(), 0.05, 0.05, 5)}
    firing, title, *_ = found["carrier:Carrier B"]
    assert firing and title == "Carrier B: 10% of calls failed"


def test_it_reads_the_carriers_figures_as_well_as_the_live_snapshot(busy):
    assert carrier_findings(carrier_figures(), 0.6, 0.3, 5) == carrier_findings(snapshot(), 0.6, 0.3, 5)
