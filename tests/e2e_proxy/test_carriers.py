"""Issue 13's Carriers, end to end: two carriers calling through a real proxy (two_carriers.py), one
server answering 503 to some calls and another killed mid-run. What the proxy publishes, and what the
panel sums from it, match SIPp's own counts of each carrier's calls and answers."""

import pytest

from tests.e2e_proxy.two_carriers import make_two_carriers, run_two_carriers, wait_counted

pytestmark = pytest.mark.sipp

CALLS, RATE, HOLD_MS = 200, 50, 300


def test_each_carriers_calls_and_answers_match_sipps_counts(cluster_factory):
    from dispatcher.carriers import carrier_figures

    cluster = make_two_carriers(cluster_factory)
    counts, sipps = run_two_carriers(cluster, calls=CALLS, rate=RATE, hold_ms=HOLD_MS)
    a, b = counts["Carrier A"], counts["Carrier B"]
    assert a.calls == b.calls == CALLS, cluster.report(*sipps)
    # every call got a 200 or a 503: ast2's death cost no call its setup. The 503s are ast3's one in
    # five for Carrier B, and for either carrier any INVITE the proxy shed because this machine was busy.
    assert a.answered + a.refused == CALLS and b.answered + b.refused == CALLS, (a, b, cluster.report(*sipps))
    assert b.refused >= CALLS // 5 and b.answered > 0, f"ast3 refuses one call in five: {b}"
    node = wait_counted(cluster, counts)
    published = node["carriers"]
    for name, c in counts.items():
        p = published[name]
        print(f"\n{name}: SIPp {c.calls} INVITEs, {c.answered} 200s, {c.refused} 503s; proxy {p['calls']} calls, "
              f"{p['answered']} answered, failed {p['failed']} (node shed {node['totals']['shed']})")  # fmt: skip
        assert (p["calls"], p["answered"], p["failed"]["5xx"]) == (c.calls, c.answered, c.refused), (name, p, c)
    assert set(published) == {"Carrier A", "Carrier B"}  # nothing from an unknown source

    figures = carrier_figures()
    for name, c in counts.items():
        row = figures.row(name)
        assert (row.calls, row.answered) == (c.calls, c.answered)
        assert row.answer_rate == pytest.approx(c.answered / c.calls)
        assert row.setup_p50 is not None and row.setup_p95.low >= row.setup_p50.low
    assert figures.row("other").calls == 0 and not figures.partial, figures.why_partial
