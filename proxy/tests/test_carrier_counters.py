"""The proxy's counters per carrier (proxy.carriers): classes, setup histogram, the rate ring and the
recent window, with the clock passed in (no sleeping)."""

from lbcore import carriers as lc
from proxy.carriers import Carriers


def test_each_final_code_counts_in_its_class_and_calls_are_their_sum():
    cs = Carriers()
    for code in (200, 200, 486, 503, 603, 408, 487, 302):
        cs.final("Carrier A", code, 0.1, 1000.0)
    f = cs.snapshot(1000.0)["Carrier A"]
    assert f["calls"] == 8
    assert (f["answered"], f["canceled"], f["redirected"]) == (2, 1, 1)
    assert f["failed"] == {"4xx": 1, "5xx": 1, "6xx": 1, "timeout": 1}
    assert f["calls"] == f["answered"] + f["canceled"] + f["redirected"] + sum(f["failed"].values())


def test_setup_time_goes_in_the_histogram_except_for_canceled_calls():
    cs = Carriers()
    cs.final("A", 200, 0.3, 10.0)
    cs.final("A", 503, 2.5, 10.0)
    cs.final("A", 487, 25.0, 10.0)  # how long the caller let it ring
    buckets = cs.snapshot(10.0)["A"]["setup_buckets"]
    assert sum(buckets) == 2
    assert buckets[lc.setup_bucket(0.3)] == 1 and buckets[lc.setup_bucket(2.5)] == 1


def test_carriers_are_counted_apart():
    cs = Carriers()
    cs.final("A", 200, 0.1, 1.0)
    cs.final("other", 404, 0.1, 1.0)
    snap = cs.snapshot(1.0)
    assert (snap["A"]["calls"], snap["A"]["answered"]) == (1, 1)
    assert (snap["other"]["calls"], snap["other"]["failed"]["4xx"]) == (1, 1)


def test_the_current_rate_counts_arrivals_over_the_last_10_s():
    cs = Carriers()
    for s in range(10):
        for _ in range(4):
            cs.arrived("A", 2000 + s + 0.5)
    assert cs.snapshot(2009.99)["A"]["cps"] == 4.0
    assert cs.snapshot(2009.99 + 10)["A"]["cps"] == 0.0


def test_the_recent_window_forgets_calls_older_than_it():
    cs = Carriers()
    start = 30_000.0  # a bucket boundary
    cs.final("A", 200, 0.1, start)
    cs.final("A", 503, 0.1, start + 100)
    assert cs.snapshot(start + 100)["A"]["recent"] == {"calls": 2, "answered": 1, "failed": 1}
    # the first bucket leaves the window; the totals keep it
    later = cs.snapshot(start + lc.RECENT_SECONDS + 1)["A"]
    assert later["recent"] == {"calls": 1, "answered": 0, "failed": 1}
    assert later["calls"] == 2
    assert cs.snapshot(start + 10 * lc.RECENT_SECONDS)["A"]["recent"]["calls"] == 0


def test_a_canceled_call_is_neither_answered_nor_failed_in_the_recent_window():
    cs = Carriers()
    cs.final("A", 487, 3.0, 60.0)
    assert cs.snapshot(60.0)["A"]["recent"] == {"calls": 1, "answered": 0, "failed": 0}


def test_a_shed_invite_is_a_5xx_call_with_no_setup_time():
    cs = Carriers()
    cs.shed("A", 500.5)
    f = cs.snapshot(500.9)["A"]
    assert (f["calls"], f["failed"]["5xx"], sum(f["setup_buckets"])) == (1, 1, 0)
    assert f["recent"] == {"calls": 1, "answered": 0, "failed": 1} and f["cps"] > 0
