"""The Calls page: search by the same filters as the API, results swapped in by htmx, a call's
ladder with every server tried and its code; untrusted text escaped; errors name their field."""

import time

import pytest

from dispatcher.tests.calls_support import add_end, add_setup
from dispatcher.tests.panel_support import write_node

URL = "/calls/"


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def log(redis, table):
    d1, d2 = table["dests"][:2]
    now = time.time()
    add_setup(redis, "fo-1@x", [(d1, d1.server_id, 503, 12), (d2, d2.server_id, 200, 30)], 200, started=now - 50)
    add_end(redis, "fo-1@x", ended=now - 5)
    add_setup(redis, "evil/<b>x</b>", [(d1, d1.server_id, 486, 3)], 486, from_user="<script>alert(1)</script>")
    return table


def test_it_lists_calls_newest_first(viewer_client, log):
    html = viewer_client.get(URL).content.decode()
    assert html.index("evil/") < html.index("fo-1@x")
    assert "ast1 (503) → ast2 (200)" in html


def test_it_escapes_untrusted_text(viewer_client, log):
    html = viewer_client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>x</b>" not in html


def test_htmx_gets_the_results_only(viewer_client, log):
    response = viewer_client.get(URL, {"call_id": "fo-1@x"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="call-row"' in html and "evil" not in html


def test_a_call_shows_as_a_ladder(viewer_client, log):
    html = viewer_client.get("/calls/fo-1@x").content.decode()
    assert 'data-testid="ladder"' in html
    assert html.index("ast1") < html.index(">503<") < html.index("ast2") < html.index(">200<")
    assert "BYE by the caller" in html and "45.0 s" in html


def test_a_call_id_with_a_slash_opens(viewer_client, log):
    response = viewer_client.get("/calls/evil/%3Cb%3Ex%3C/b%3E")
    assert response.status_code == 200 and "&lt;b&gt;x&lt;/b&gt;" in response.content.decode()


def test_an_unknown_call_is_404_and_says_so(viewer_client, log):
    response = viewer_client.get("/calls/nope")
    assert response.status_code == 404 and "No call with this Call-ID" in response.content.decode()


def test_a_bad_filter_names_its_field(viewer_client, log):
    html = viewer_client.get(URL, {"final_code": "abc", "server": "nope"}).content.decode()
    assert "Final code: A SIP code" in html and "Server: No server has the id or name" in html


def test_it_needs_a_login(client, db):
    assert client.get(URL).status_code == 302


def test_records_the_proxies_lost_are_counted_on_the_page(viewer_client, log, redis):
    write_node(redis, totals={"active": 0, "invites": 9, "call_records_dropped": 7})
    html = viewer_client.get(URL).content.decode()
    assert "7 call records lost by the live proxies" in html


def test_a_search_that_stopped_early_says_how_far_it_looked(viewer_client, log, redis, monkeypatch):
    from dispatcher import calls

    monkeypatch.setattr(calls, "SCAN_MAX", 1)
    monkeypatch.setattr(calls, "PAGE", 1)
    html = viewer_client.get(URL, {"call_id": "nothing-like-it"}).content.decode()
    assert "Searched back to" in html and "only" in html
