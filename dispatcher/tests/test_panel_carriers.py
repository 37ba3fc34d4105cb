"""The Carriers page: a row per carrier with its figures, refreshed by htmx, partial figures said so."""

import time

import pytest

from dispatcher.templatetags.carriers import setup
from dispatcher.tests.carrier_support import figures, two_carriers, write_carriers
from lbcore.carriers import SetupBucket

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def _row(html, name):
    start = html.index(f'data-carrier="{name}"')
    return html[start : html.index("</tr>", start)]


def test_it_shows_each_carrier_with_calls_answer_rate_and_failures(as_viewer, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(8, 6, {"5xx": 2}, cps=1.5, setup=[0.2] * 8)})
    html = as_viewer.get("/carriers/").content.decode()
    assert 'href="/carriers/" class="current">Carriers</a>' in html
    a = _row(html, "Carrier A")
    assert 'data-testid="calls">8<' in a and 'data-testid="answered">6<' in a and "75.0 %" in a
    assert 'data-testid="failed-5xx">2<' in a and 'data-testid="failed-timeout">0<' in a
    assert "203.0.113.10/32, 203.0.113.11/32" in a and "1.5" in a
    assert 'data-testid="setup">100–200 ms · 100–200 ms<' in a  # every call took 200 ms: its bucket
    b = _row(html, "Carrier B")
    assert 'data-testid="calls">0<' in b and 'data-testid="answer-rate">—<' in b
    assert "no rule matches" in _row(html, "other")
    assert "lb-a since" in html and "partial:" not in html


def test_setup_times_of_a_few_ms_are_not_made_up_points_in_their_bucket(as_viewer, redis):
    """Every call's setup was 2-4 ms (the Calls page shows each); the page said "25 ms · 48 ms"."""
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(30, 30, setup=[0.002, 0.003, 0.004] * 10)})
    a = _row(as_viewer.get("/carriers/").content.decode(), "Carrier A")
    assert 'data-testid="setup">≤ 50 ms · ≤ 50 ms<' in a


def test_htmx_gets_the_live_fragment_only(as_viewer, redis):
    two_carriers()
    response = as_viewer.get("/carriers/", **HTMX)
    assert b"<html" not in response.content and b'data-testid="carriers"' in response.content
    assert "HX-Request" in response["Vary"]


def test_a_proxy_that_stopped_reporting_is_named_in_a_partial_banner(as_viewer, redis):
    two_carriers()
    write_carriers(redis, "lb-a", {"Carrier A": figures(2, 2)})
    write_carriers(redis, "lb-b", {"Carrier A": figures(6, 3)}, heartbeat=time.time() - 120, live=False)
    html = as_viewer.get("/carriers/").content.decode()
    assert "partial: proxy lb-b stopped reporting at" in html
    assert 'data-testid="calls">8<' in _row(html, "Carrier A")
    assert "lb-b since" in html and "(not reporting)" in html


def test_it_needs_a_login(client, db):
    response = client.get("/carriers/")
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("bucket", "text"),
    [(None, "—"), ((0.0, 0.05), "≤ 50 ms"), ((0.2, 0.3), "200–300 ms"), ((0.75, 1), "750 ms–1 s"),
     ((1, 1.5), "1–1.5 s"), ((120, None), "> 120 s")],
)  # fmt: skip
def test_a_setup_quantile_reads_as_its_bucket(bucket, text):
    assert setup(SetupBucket(*bucket) if bucket else None) == text
