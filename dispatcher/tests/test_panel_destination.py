"""The destination page: settings, live numbers, state history, RTT and calls charts."""

import json
import time

import pytest

from dispatcher.choices import AdminState
from dispatcher.services import set_state
from dispatcher.tests.panel_support import write_health, write_node
from lbcore import contract


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def test_it_shows_settings_and_state_history(as_viewer, operator, cluster, redis):
    ast1 = cluster["ast1"]
    set_state(ast1, AdminState.INACTIVE, actor=operator, reason="kernel update")
    html = as_viewer.get(f"/destinations/{ast1.id}/").content.decode()
    assert "ast1" in html and "sip:127.0.0.1:25081" in html and "Weight / rweight" in html
    history = html.split('data-testid="events"')[1]
    assert "active → <b>inactive</b>" in history and "operator" in history and "kernel update" in history


def test_it_draws_the_rtt_of_the_last_probes(as_viewer, cluster, redis):
    ast1 = cluster["ast1"]
    for i, rtt in enumerate([3.0, 4.0, None, 5.0]):
        redis.lpush(
            contract.rtt_key(ast1.id), json.dumps({"t": time.time() - 60 + i, "rtt_ms": rtt, "code": 200 if rtt else None})
        )
    html = as_viewer.get(f"/destinations/{ast1.id}/").content.decode()
    chart = html.split('data-testid="rtt-chart"')[1].split("</svg>")[0]
    assert chart.count("<circle") == 1  # the timeout
    assert chart.count(",") == 3  # three points on the line
    assert "last 4 probes" in html and "max 5.0 ms" in html


def caption(html, testid):
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</h3>", start)]


def test_an_rtt_chart_of_timeouts_claims_no_max(as_viewer, cluster, redis):
    """Every probe timed out: the caption said "max 1.0 ms", the top of an empty scale."""
    ast1 = cluster["ast1"]
    for i in range(33):
        redis.lpush(contract.rtt_key(ast1.id), json.dumps({"t": time.time() - 60 + i, "rtt_ms": None, "code": None}))
    html = as_viewer.get(f"/destinations/{ast1.id}/").content.decode()
    text = caption(html, "rtt-caption")
    assert "last 33 probes" in text and "no reply to any of them" in text and "max" not in text
    chart = html.split('data-testid="rtt-chart"')[1].split("</svg>")[0]
    assert chart.count("<circle") == 33 and " ms</text>" not in chart  # no value on the scale either


def test_a_calls_history_of_zeros_claims_no_max(as_viewer, cluster, redis):
    ast1 = cluster["ast1"]
    for i in range(6):
        redis.lpush(contract.calls_key(ast1.id), json.dumps({"t": round(time.time() - 60 + 10 * i, 1), "active": 0}))
    text = caption(as_viewer.get(f"/destinations/{ast1.id}/").content.decode(), "calls-history-caption")
    assert "no calls this hour" in text and "max" not in text


def test_it_draws_calls_by_proxy(as_viewer, cluster, redis):
    ast1 = cluster["ast1"]
    write_node(redis, "proxy-a", destinations={ast1.id: {"active": 6}})
    write_node(redis, "proxy-b", destinations={ast1.id: {"active": 2}})
    write_health(redis, ast1.id, "up", rtt_ms=2.5, code=200)
    html = as_viewer.get(f"/destinations/{ast1.id}/").content.decode()
    chart = html.split('data-testid="calls-chart"')[1].split("</svg>")[0]
    assert "proxy-a · 6" in chart and "proxy-b · 2" in chart and chart.count("<rect") == 2
    assert "<b>8</b>" in html and "2.5 ms · 200" in html


def test_calls_by_proxy_come_from_the_dialog_records_where_a_node_has_them(as_viewer, cluster, redis):
    """The page's total counts the records; the bar per proxy used the heartbeat, which keeps a call
    a worker took over from a dead node after its sibling worker closed the record: 2 against 0."""
    ast1 = cluster["ast1"]
    write_node(redis, "proxy-a", destinations={ast1.id: {"active": 2}})  # the heartbeat lags
    redis.hset(contract.dialog_counts_key("proxy-a"), mapping={"~": time.time()})  # no call recorded
    write_node(redis, "proxy-old", destinations={ast1.id: {"active": 3}})  # no records: its heartbeat
    html = as_viewer.get(f"/destinations/{ast1.id}/").content.decode()
    chart = html.split('data-testid="calls-chart"')[1].split("</svg>")[0]
    assert "proxy-a · 0" in chart and "proxy-old · 3" in chart
    assert "<b>3</b>" in html


def test_its_live_card_refreshes_as_a_fragment(as_viewer, cluster, redis):
    response = as_viewer.get(f"/destinations/{cluster['ast1'].id}/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and "Active calls" in html and "State history" not in html
    assert "no proxy reporting" in html


def test_operators_get_links_back_to_this_page(client, operator, cluster, redis):
    client.force_login(operator)
    html = client.get(f"/destinations/{cluster['ast1'].id}/").content.decode()
    assert f"/destinations/{cluster['ast1'].id}/confirm/inactive/?next=/destinations/{cluster['ast1'].id}/" in html
