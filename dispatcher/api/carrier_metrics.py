"""The carriers' families of /metrics (dispatcher.carriers): the same figures as the page and the API.

Counters are summed over every proxy that counted, since each started (a restart is a counter reset,
as Prometheus' rate() expects). `lbpanel_carrier_figures_partial` is 1 while they lack something
(a proxy stopped reporting or restarted, or none reports): the page says what.
"""

import math

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from dispatcher.carriers import carrier_figures
from lbcore.carriers import FAILURE_CLASSES, SETUP_QUANTILES, quantile


def carrier_metrics(snap):
    figures = carrier_figures(snap)
    labels = ["carrier"]
    calls = CounterMetricFamily("lbpanel_carrier_calls", "INVITEs from the carrier given a final response.", labels=labels)
    answered = CounterMetricFamily("lbpanel_carrier_answered", "The carrier's calls answered 2xx.", labels=labels)
    failures = CounterMetricFamily(
        "lbpanel_carrier_failures",
        "The carrier's calls failed, by the class of the final response sent: 4xx, 5xx, 6xx, timeout (408). 487 is not one.",
        labels=["carrier", "class"],
    )
    cps = GaugeMetricFamily(
        "lbpanel_carrier_cps",
        "New INVITEs per second from the carrier over the last 10 s; absent when no proxy reports.",
        labels=labels,
    )
    setup = GaugeMetricFamily(
        "lbpanel_carrier_setup_seconds",
        "Setup time (INVITE received to final response sent, canceled calls left out), an upper bound: the quantile is "
        "at most this, the top of the histogram bucket it falls in (buckets are the resolution; no point inside one is "
        "claimed); +Inf past the last bucket edge; absent with no calls.",
        labels=["carrier", "quantile"],
    )
    partial = GaugeMetricFamily(
        "lbpanel_carrier_figures_partial",
        "1 while the carrier figures lack something: a proxy stopped reporting or restarted, or none reports.",
        value=1 if figures.partial else 0,
    )
    for row in figures.rows:
        name = [row.name]
        calls.add_metric(name, row.calls)
        answered.add_metric(name, row.answered)
        for cls in FAILURE_CLASSES:
            failures.add_metric([row.name, cls], row.failed[cls])
        if figures.cps_known:
            cps.add_metric(name, row.cps)
        for q in SETUP_QUANTILES:
            bucket = quantile(row.figures["setup_buckets"], q)
            if bucket is not None:
                setup.add_metric([row.name, str(q)], math.inf if bucket.high is None else bucket.high)
    yield from (calls, answered, failures, cps, setup, partial)
