"""/metrics per carrier: lbpanel_carrier_* with the names the alerting rules and dashboards use."""

import time

from dispatcher.tests.carrier_support import figures, two_carriers, write_carriers
from dispatcher.tests.test_metrics_health import samples


def test_it_exports_each_carriers_counters_rate_and_setup_quantiles(anonymous, redis, db):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(10, 7, {"5xx": 2, "timeout": 1}, cps=1.5, setup=[0.04] * 10)})
    found = samples(anonymous.get("/metrics"))
    a = (("carrier", "Carrier A"),)
    assert found[("lbpanel_carrier_calls_total", a)] == 10
    assert found[("lbpanel_carrier_answered_total", a)] == 7
    assert found[("lbpanel_carrier_failures_total", (("carrier", "Carrier A"), ("class", "5xx")))] == 2
    assert found[("lbpanel_carrier_failures_total", (("carrier", "Carrier A"), ("class", "timeout")))] == 1
    assert found[("lbpanel_carrier_failures_total", (("carrier", "Carrier A"), ("class", "6xx")))] == 0
    assert found[("lbpanel_carrier_cps", a)] == 1.5
    # every call took 40 ms: at most 50 ms (the bucket's top), not an interpolated 25 or 47.5 ms
    assert found[("lbpanel_carrier_setup_seconds", (("carrier", "Carrier A"), ("quantile", "0.5")))] == 0.05
    assert found[("lbpanel_carrier_setup_seconds", (("carrier", "Carrier A"), ("quantile", "0.95")))] == 0.05
    assert found[("lbpanel_carrier_calls_total", (("carrier", "Carrier B"),))] == 0  # a rule's carrier before its first call
    assert ("lbpanel_carrier_setup_seconds", (("carrier", "Carrier B"), ("quantile", "0.5"))) not in found
    assert found[("lbpanel_carrier_calls_total", (("carrier", "other"),))] == 0
    assert found[("lbpanel_carrier_figures_partial", ())] == 0


def test_partial_figures_are_flagged_and_an_unknown_rate_absent(anonymous, redis, db):
    two_carriers()
    write_carriers(redis, "lb-b", {"Carrier A": figures(6, 3, cps=2.0)}, heartbeat=time.time() - 120, live=False)
    found = samples(anonymous.get("/metrics"))
    assert found[("lbpanel_carrier_figures_partial", ())] == 1
    assert found[("lbpanel_carrier_calls_total", (("carrier", "Carrier A"),))] == 6
    assert ("lbpanel_carrier_cps", (("carrier", "Carrier A"),)) not in found
