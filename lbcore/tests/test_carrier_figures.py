"""How a call's final code counts for its carrier, and how nodes' figures add up (lbcore.carriers)."""

import pytest

from lbcore import carriers as c


@pytest.mark.parametrize(
    ("code", "kind"),
    [(200, "answered"), (202, "answered"), (302, "redirected"), (404, "4xx"), (486, "4xx"), (408, "timeout"),
     (487, "canceled"), (500, "5xx"), (503, "5xx"), (603, "6xx")],
)  # fmt: skip
def test_a_final_code_counts_as_its_class(code, kind):
    assert c.outcome(code) == kind


def test_a_setup_time_lands_in_the_first_bucket_not_below_it():
    assert c.setup_bucket(0.0) == 0
    assert c.setup_bucket(0.05) == 0
    assert c.setup_bucket(0.051) == 1
    assert c.setup_bucket(1e6) == len(c.SETUP_EDGES)  # the overflow


def test_quantiles_come_from_the_merged_buckets_of_several_nodes():
    a, b = c.empty_figures(), c.empty_figures()
    a["setup_buckets"][c.setup_bucket(0.04)] = 50  # node a: 50 fast calls
    b["setup_buckets"][c.setup_bucket(2.5)] = 50  # node b: 50 slow ones
    merged = c.empty_figures()
    c.add_figures(merged, a)
    c.add_figures(merged, b)
    assert merged["setup_buckets"][0] == 50 and merged["setup_buckets"][c.setup_bucket(2.5)] == 50
    assert c.quantile(merged["setup_buckets"], 0.5) == (0.0, 0.05)  # the fast half's bucket
    # 95 % of 100 calls: the 45th of the 50 slow ones, somewhere between 2 and 3 s: no point in it is known
    assert c.quantile(merged["setup_buckets"], 0.95) == (2, 3)


def test_a_quantile_is_its_bucket_never_a_point_interpolated_inside_it():
    """Every call took 2-4 ms: the page said p50 25 ms, p95 48 ms (points made up inside 0-50 ms)."""
    buckets = c.empty_figures()["setup_buckets"]
    for seconds in (0.002, 0.003, 0.004) * 10:
        buckets[c.setup_bucket(seconds)] += 1
    assert c.quantile(buckets, 0.5) == c.SetupBucket(0.0, 0.05)
    assert c.quantile(buckets, 0.95) == c.SetupBucket(0.0, 0.05)


def test_no_calls_has_no_quantile_nor_answer_rate():
    assert c.quantile(c.empty_figures()["setup_buckets"], 0.5) is None
    assert c.answer_rate(0, 0) is None
    assert c.answer_rate(3, 4) == 0.75


def test_the_overflow_bucket_is_above_the_last_edge_with_no_upper_bound():
    buckets = c.empty_figures()["setup_buckets"]
    buckets[-1] = 3
    assert c.quantile(buckets, 0.95) == (c.SETUP_EDGES[-1], None)


def test_a_node_that_stopped_reporting_adds_its_counts_but_not_its_rate_nor_recent_window():
    doc = {"calls": 4, "answered": 3, "failed": {"5xx": 1}, "cps": 2.0, "recent": {"calls": 4, "answered": 3, "failed": 1}}
    into = c.add_figures(c.empty_figures(), doc, current=False)
    assert (into["calls"], into["answered"], into["failed"]["5xx"]) == (4, 3, 1)
    assert into["cps"] == 0.0 and into["recent"]["calls"] == 0


def test_junk_from_redis_counts_as_nothing():
    into = c.add_figures(c.empty_figures(), {"calls": "x", "failed": [], "setup_buckets": [1, 2], "cps": "fast", "recent": 3})
    assert into == c.empty_figures()
    assert c.add_figures(c.empty_figures(), "junk") == c.empty_figures()
