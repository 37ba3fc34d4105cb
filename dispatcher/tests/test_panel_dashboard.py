"""The dashboard: one block per set, one row per destination, live numbers from Redis, stale and missing data said aloud."""

import re
import time

import pytest

from dispatcher.choices import AdminState
from dispatcher.models import Destination
from dispatcher.tests.panel_support import make_destination, make_set, write_health, write_node


def row_html(html, dest):
    match = re.search(rf'<tr id="dest-{dest.id}".*?</tr>', html, re.S)
    assert match, f"no row for destination {dest.id}"
    return match.group(0)


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def test_it_shows_each_set_and_destination_with_flags(as_viewer, cluster, redis):
    write_node(redis, destinations={cluster["ast1"].id: {"active": 12, "cps": 2.5}})
    write_health(redis, cluster["ast1"].id, "up", rtt_ms=3.4, code=200)
    html = as_viewer.get("/sets/").content.decode()
    assert "set 1 · agents" in html and "4 · weighted round-robin" in html
    ast1 = row_html(html, cluster["ast1"])
    assert '<td class="flags mono" data-testid="flags">A</td>' in ast1
    assert 'badge green" data-testid="admin-badge">Active' in ast1
    assert 'data-testid="active">12<' in ast1 and "2.5" in ast1 and "3.4 ms · 200" in ast1
    assert "sip:127.0.0.1:25081" in ast1 and "ast1" in ast1 and "50 / 0" in ast1
    assert ">I</td>" in row_html(html, cluster["ast2"])
    assert 'badge orange" data-testid="admin-badge">Maintenance' in row_html(html, cluster["ast2"])
    assert ">D</td>" in row_html(html, cluster["ast3"])
    assert 'badge grey" data-testid="admin-badge">Disabled' in row_html(html, cluster["ast3"])


def test_it_shows_probe_health_from_redis_in_flags_and_badge(as_viewer, cluster, redis):
    cluster["ast1"].probing = True
    cluster["ast1"].save()
    write_node(redis)
    write_health(redis, cluster["ast1"].id, "down", rtt_ms=None, code=None, reason="timeout")
    ast1 = row_html(as_viewer.get("/sets/").content.decode(), cluster["ast1"])
    assert ">IP</td>" in ast1
    assert 'badge red" data-testid="health-badge" title="timeout">Down' in ast1
    write_health(redis, cluster["ast1"].id, "suspect", code=503)
    assert ">ATP</td>" in row_html(as_viewer.get("/sets/").content.decode(), cluster["ast1"])


def test_it_totals_per_set_and_for_the_cluster(as_viewer, redis, db):
    one, two = make_set(1, "agents"), make_set(2, "carriers")
    a, b, c = make_destination(one, 1), make_destination(one, 2), make_destination(two, 3)
    write_node(redis, "proxy-a", destinations={a.id: {"active": 5, "cps": 1.0}, c.id: {"active": 2, "cps": 0.5}})
    write_node(redis, "proxy-b", destinations={a.id: {"active": 3, "cps": 1.0}, b.id: {"active": 4, "cps": 0.25}})
    for dest in (a, b, c):
        write_health(redis, dest.id, "up")
    write_health(redis, b.id, "down")
    html = as_viewer.get("/sets/").content.decode()
    assert 'data-testid="active">8<' in row_html(html, a)  # summed over both proxies
    assert 'data-testid="cluster-active">14<' in html
    set1 = html.split('id="set-1"')[1].split('id="set-2"')[0]
    assert "<b>12</b> active" in set1 and "<b>1</b>/2 in service" in set1 and "1 down" in set1


def test_it_says_no_proxy_reporting_and_dashes_the_counts(as_viewer, cluster, redis):
    html = as_viewer.get("/sets/").content.decode()
    assert "no proxy reporting" in html
    assert 'data-testid="cluster-active">—<' in html
    assert "no heartbeat" in html
    assert "drain unknown" in row_html(html, cluster["ast2"])  # never "safe to restart" on no data


def test_it_marks_data_stale_when_the_heartbeat_is_old(as_viewer, cluster, redis):
    write_node(redis, heartbeat=time.time() - 10)
    html = as_viewer.get("/sets/").content.decode()
    assert re.search(r'class="updated stale" data-testid="updated"\s+data-age="1\d', html)
    write_node(redis, heartbeat=time.time())
    html = as_viewer.get("/sets/").content.decode()
    assert 'class="updated " data-testid="updated"' in html and "updated 0s ago" in html


def test_it_shows_each_proxy_and_one_that_is_behind(as_viewer, cluster, redis):
    redis.set("lb:table:version", 7)
    write_node(redis, "proxy-a", table_version=7)
    write_node(redis, "proxy-b", table_version=5)
    html = as_viewer.get("/sets/").content.decode()
    nodes = html.split('data-testid="nodes"')[1]
    assert "proxy-a" in nodes and "proxy-b" in nodes and "current" in nodes
    assert 'data-testid="behind">2 behind' in nodes


def test_it_shows_a_redis_outage_without_crashing(as_viewer, cluster, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = as_viewer.get("/sets/")
    assert response.status_code == 200
    assert b"Redis is not reachable" in response.content
    assert b"sip:127.0.0.1:25081" in response.content  # configuration still shown


def test_with_redis_away_health_and_counts_are_unknown_not_not_probed(as_viewer, cluster, settings):
    # Found by hand: with Redis down every row said "not probed", the server rows "no history yet",
    # and the bar "0/N in service": the proxies were routing on, and the servers had been probed.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    for page in ("/sets/", "/"):
        html = as_viewer.get(page).content.decode()
        assert ">not probed<" not in html and "no history yet" not in html, page
        assert 'data-testid="probe-unknown"' in html, page
        bar = html[html.index('data-testid="in-service"') :]
        assert bar[bar.index("<b") : bar.index("</b>")].endswith(">?"), page
        assert "no proxy reporting" not in html.split('data-testid="redis-error"')[1], page  # the cause is Redis
    from dispatcher.models import Destination

    detail = as_viewer.get(f"/destinations/{Destination.objects.first().pk}/").content.decode()
    assert "not probed yet" not in detail and "no proxy reporting" not in detail
    assert "Redis cannot be read" in detail


def test_drained_says_safe_to_restart_only_at_zero_calls(as_viewer, cluster, redis):
    ast2 = cluster["ast2"]
    write_node(redis, destinations={ast2.id: {"active": 3}})
    assert 'data-testid="draining">draining' in row_html(as_viewer.get("/sets/").content.decode(), ast2)
    write_node(redis, destinations={ast2.id: {"active": 0}})
    assert "drained — safe to restart" in row_html(as_viewer.get("/sets/").content.decode(), ast2)


def test_htmx_polls_get_the_live_fragment_only(as_viewer, cluster, redis):
    response = as_viewer.get("/sets/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and f'id="dest-{cluster["ast1"].id}"' in html
    assert "HX-Request" in response["Vary"]
    page = as_viewer.get("/sets/").content.decode()
    assert 'hx-get="/sets/" hx-trigger="every 2s"' in page and "/static/vendor/htmx.min.js" in page


def test_viewer_sees_no_maintenance_button(as_viewer, cluster, redis):
    html = as_viewer.get("/sets/").content.decode()
    assert "Maintenance</a>" not in html and "Return to service" not in html and "Disable</a>" not in html


def test_operator_sees_the_buttons_for_each_state(client, operator, cluster, redis):
    client.force_login(operator)
    html = client.get("/sets/").content.decode()
    assert 'data-testid="maintenance"' in row_html(html, cluster["ast1"])
    assert 'data-testid="return"' in row_html(html, cluster["ast2"])
    assert 'data-testid="disable"' not in row_html(html, cluster["ast3"])


def test_it_shows_time_in_the_current_state(as_viewer, cluster, redis):
    write_health(redis, cluster["ast1"].id, "up", since=time.time() - 125)
    Destination.objects.filter(pk=cluster["ast1"].pk).update(created=cluster["ast1"].created.replace(year=2020))
    assert ">2m 0" in row_html(as_viewer.get("/sets/").content.decode(), cluster["ast1"])


@pytest.mark.parametrize("partial", [False, True])
def test_it_makes_a_fixed_number_of_queries_for_50_destinations(client, operator, redis, django_assert_max_num_queries, partial):
    from dispatcher.services import set_state

    sets = [make_set(n, f"set{n}") for n in (1, 2)]
    dests = [make_destination(sets[n % 2], n) for n in range(50)]
    for dest in dests[:10]:
        set_state(dest, AdminState.INACTIVE, actor=operator, reason="patching")
    write_node(redis, destinations={d.id: {"active": 1, "cps": 0.1} for d in dests})
    client.force_login(operator)
    headers = {"HTTP_HX_REQUEST": "true"} if partial else {}
    # session, user, role groups, sets, destinations (with their last admin change),
    # the table revision (is a change not applied?), the probe timing (is a round late?),
    # the servers and their rows (a row is drained only when its server is), the alerts' proxy
    # busy threshold (how near its CPU limit each proxy is shown), the alert channels failing (banner)
    with django_assert_max_num_queries(11):
        response = client.get("/sets/", **headers)
    assert response.content.decode().count('<tr id="dest-') == 50
