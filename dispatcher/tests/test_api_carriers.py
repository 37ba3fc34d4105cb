"""GET /api/v1/carriers/: the Carriers page's figures for scripts (viewer role)."""

import time

from dispatcher.tests.carrier_support import figures, two_carriers, write_carriers

URL = "/api/v1/carriers/"


def test_it_answers_each_carriers_figures(as_viewer, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(10, 7, {"5xx": 2, "timeout": 1}, cps=1.5, setup=[0.04] * 10)})
    body = as_viewer.get(URL).json()
    assert body["partial"] is False and body["why_partial"] == []
    assert [n["name"] for n in body["nodes"]] == ["lb-a"]
    rows = {c["name"]: c for c in body["carriers"]}
    assert list(rows) == ["Carrier A", "Carrier B", "other"]
    a = rows["Carrier A"]
    assert (a["calls"], a["answered"], a["answer_rate"], a["cps"]) == (10, 7, 0.7, 1.5)
    assert a["failures"] == {"4xx": 0, "5xx": 2, "6xx": 0, "timeout": 1}
    assert a["networks"] == ["203.0.113.10/32", "203.0.113.11/32"] and a["sets"] == [2]
    assert a["recent"] == {"seconds": 300, "calls": 10, "answered": 7, "failed": 3}
    # every call took 40 ms: the median is at most 50 ms (the bucket's top), not an interpolated 25 ms
    assert (a["setup_p50"], a["setup_p50_range"]) == (0.05, {"low": 0.0, "high": 0.05})
    assert (rows["Carrier B"]["calls"], rows["Carrier B"]["answer_rate"], rows["Carrier B"]["setup_p95"]) == (0, None, None)
    assert rows["Carrier B"]["setup_p95_range"] is None


def test_a_setup_quantile_past_the_last_bucket_has_no_upper_bound(as_viewer, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(2, 2, setup=[200.0, 300.0])})
    a = as_viewer.get(URL).json()["carriers"][0]
    assert (a["setup_p95"], a["setup_p95_range"]) == (None, {"low": 120.0, "high": None})


def test_a_proxy_that_stopped_reporting_makes_it_partial_with_why(as_viewer, redis):
    two_carriers()
    write_carriers(redis, "lb-b", {"Carrier A": figures(6, 3)}, heartbeat=time.time() - 120, live=False)
    body = as_viewer.get(URL).json()
    assert body["partial"] is True
    assert any("proxy lb-b stopped reporting" in why for why in body["why_partial"])
    assert body["carriers"][0]["calls"] == 6 and body["carriers"][0]["cps"] is None  # no proxy reports now


def test_it_refuses_anonymous_and_roleless_users_and_writes(anonymous, as_nobody, as_admin, db):
    assert anonymous.get(URL).status_code == 401
    assert as_nobody.get(URL).status_code == 403
    assert as_admin.post(URL, {}, format="json").status_code == 405


def test_it_is_in_the_openapi_schema(as_viewer):
    schema = as_viewer.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/carriers/" in schema["paths"]
    assert "CarriersSerializer" in str(schema["components"]["schemas"]) or "Carriers" in str(schema["components"]["schemas"])
