"""The Servers view (the landing page): one row per Asterisk box, its calls summed over every set and
proxy, and Maintenance / Disable / Return acting on every set's row at once."""

import json
import re
import time

import pytest

from dispatcher.choices import AdminState
from dispatcher.models import Destination, StateEvent
from dispatcher.services import set_state
from dispatcher.tests.panel_support import make_destination, make_set, write_health, write_node
from lbcore import contract

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def seed(db):
    """The seed's shape: ast1..ast3 in set 1 (outbound) and again in set 2 (inbound)."""
    out, inb = make_set(1, "outbound"), make_set(2, "inbound")
    rows = {(s.setid, n): make_destination(s, n) for s in (out, inb) for n in (1, 2, 3)}
    return {"rows": rows, "ast1": rows[(1, 1)].server, "ast3": rows[(1, 3)].server}


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def in_maintenance(server):
    """As if set and published long ago (set_state's publish waits for a commit these tests never make)."""
    Destination.objects.filter(server=server).update(admin_state=AdminState.INACTIVE)


def server_html(html, server):
    start = html.index(f'id="server-{server.id}"')
    return html[start : html.index("</tr>", start)]


def test_a_server_lists_once_with_its_calls_summed_over_sets_and_proxies(as_viewer, seed, redis):
    rows = seed["rows"]
    write_node(
        redis,
        "proxy-a",
        destinations={rows[(1, 1)].id: {"active": 30, "cps": 2.0, "cps_1m": 1.5}, rows[(2, 1)].id: {"active": 20}},
    )
    write_node(
        redis,
        "proxy-b",
        destinations={rows[(1, 1)].id: {"active": 20}, rows[(2, 1)].id: {"active": 4, "cps": 0.5, "cps_1m": 0.5}},
    )
    html = as_viewer.get("/").content.decode()
    assert html.count('class="server state-') == 3
    ast1 = server_html(html, seed["ast1"])
    assert 'data-testid="server-active">74<' in ast1 and 'data-testid="server-name">ast1<' in ast1
    split = ast1.split('data-testid="set-split"')[1]
    assert "set 1\n      <b>50</b>" in split and "set 2\n      <b>24</b>" in split
    assert 'data-testid="server-cps">2.5<' in ast1 and "· 2.0" in ast1  # now (10 s) · 1-minute average


def bar(html):
    """The status bar's text, whitespace squeezed."""
    section = html[html.index('class="status-bar"') : html.index("</section>")]
    return " ".join(re.sub(r"<[^>]+>", " ", section).split())


def test_the_bar_counts_servers_and_the_per_set_view_counts_rows(as_viewer, seed, redis):
    """Three boxes listed in two sets are 3 servers, not 6 rows: ast3 in maintenance in set 1 only still
    takes calls through set 2 (in service); ast2 down is down once, and out of service."""
    rows = seed["rows"]
    Destination.objects.filter(pk=rows[(1, 3)].pk).update(admin_state=AdminState.INACTIVE)
    write_node(redis, destinations={})
    for row in rows.values():
        write_health(redis, row.id, "down" if row.server_id == rows[(1, 2)].server_id else "up")
    servers = bar(as_viewer.get("/").content.decode())
    assert "2 /3 servers in service" in servers and "2 up" in servers and "1 down" in servers, servers
    per_set = bar(as_viewer.get("/sets/").content.decode())
    assert "3 /6 in service" in per_set and "4 up" in per_set and "2 down" in per_set, per_set


def test_the_per_set_board_is_one_click_away(as_viewer, seed, redis):
    html = as_viewer.get("/").content.decode()
    assert 'href="/sets/"' in html
    board = as_viewer.get("/sets/").content.decode()
    assert f'id="dest-{seed["rows"][(2, 3)].id}"' in board


def test_calls_no_proxy_vouches_for_are_a_question_mark_with_the_reason(as_viewer, seed, redis):
    rows = seed["rows"]
    redis.set(
        contract.node_key("lb1"),
        contract.encode_node(
            "lb1",
            table_version=1,
            started=time.time() - 5,
            pid=2,
            listen=[],
            totals={},
            destinations={rows[(1, 1)].id: {"active": 3}},
            unknown={rows[(2, 1)].id: 12},
            restarted_at=time.time() - 5,
        ),
        ex=60,
    )
    ast1 = server_html(as_viewer.get("/").content.decode(), seed["ast1"])
    assert 'data-testid="server-active" title="proxy lb1 restarted at' in ast1 and ">?<" in ast1
    assert "with 12 calls up; counts unknown" in ast1


def test_no_proxy_reporting_is_unknown_never_a_zero(as_viewer, seed, redis):
    ast1 = server_html(as_viewer.get("/").content.decode(), seed["ast1"])
    assert ">?<" in ast1 and "unknown — no proxy reporting" in ast1


def test_a_server_whose_sets_disagree_says_which(as_viewer, operator, seed, redis):
    set_state(seed["rows"][(1, 3)], AdminState.INACTIVE, actor=operator)
    ast3 = server_html(as_viewer.get("/").content.decode(), seed["ast3"])
    assert 'data-testid="server-state">Mixed<' in ast3 and "maintenance in set 1 only" in ast3
    assert "orange-outline" in ast3


def test_drained_only_when_every_set_is_at_zero(as_viewer, seed, redis):
    rows = seed["rows"]
    in_maintenance(seed["ast3"])
    write_node(redis, destinations={rows[(1, 3)].id: {"active": 0}, rows[(2, 3)].id: {"active": 12}})
    ast3 = server_html(as_viewer.get("/").content.decode(), seed["ast3"])
    assert "draining — 12 to go" in ast3 and "safe to restart" not in ast3
    write_node(redis, destinations={rows[(1, 3)].id: {"active": 0}, rows[(2, 3)].id: {"active": 0}})
    assert "drained — safe to restart" in server_html(as_viewer.get("/").content.decode(), seed["ast3"])


def test_drain_is_unknown_while_no_proxy_reports(as_viewer, seed, redis):
    in_maintenance(seed["ast3"])
    ast3 = server_html(as_viewer.get("/").content.decode(), seed["ast3"])
    assert 'data-testid="server-drain-unknown">unknown — no proxy reporting' in ast3 and "safe to restart" not in ast3


def test_the_confirmation_names_the_total_and_the_split_by_set(as_operator, seed, redis):
    rows = seed["rows"]
    write_node(redis, destinations={rows[(1, 1)].id: {"active": 50}, rows[(2, 1)].id: {"active": 24}})
    html = as_operator.get(f"/servers/{seed['ast1'].id}/confirm/inactive/", **HTMX).content.decode()
    assert "Put into maintenance ast1?" in html and 'data-testid="confirm-active">74<' in html
    split = html.split('data-testid="confirm-split"')[1]
    assert "set 1 · outbound:\n        <b>50</b>" in split and "set 2 · inbound:\n        <b>24</b>" in split
    assert f'hx-target="#server-{seed["ast1"].id}"' in html and "<html" not in html


def test_maintenance_changes_every_set_and_answers_with_the_row(as_operator, operator, seed, redis):
    ast1 = seed["ast1"]
    response = as_operator.post(f"/servers/{ast1.id}/state/", {"state": "inactive", "reason": "kernel update"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith(f'<tr id="server-{ast1.id}"') and 'data-testid="server-state">Maintenance<' in html
    assert '<div id="modal" hx-swap-oob="true">' in html and "not applied" not in html
    assert set(Destination.objects.filter(server=ast1).values_list("admin_state", flat=True)) == {"inactive"}
    event = StateEvent.objects.get(server=ast1)
    assert event.actor == operator and event.reason == "kernel update"


def test_return_to_service_asks_first_and_says_which_sets_it_overrides(as_operator, operator, seed, redis):
    # Found by hand: Return was one click where Maintenance and Disable ask, and on a server in
    # maintenance in one set only it activated that set too; a script's click on the wrong row
    # returned a box still being worked on.
    set_state(seed["rows"][(2, 1)], AdminState.INACTIVE, actor=operator)
    board = as_operator.get("/").content.decode()
    row = board[board.index(f'id="server-{seed["ast1"].id}"') :]
    row = row[: row.index("</tr>")]
    assert f'hx-get="/servers/{seed["ast1"].id}/confirm/active/"' in row, row
    dialog = as_operator.get(f"/servers/{seed['ast1'].id}/confirm/active/", **HTMX).content.decode()
    assert "Return to service ast1?" in dialog and "in the sets where it was in maintenance or disabled too" in dialog
    assert set(Destination.objects.filter(server=seed["ast1"]).values_list("admin_state", flat=True)) == {"active", "inactive"}
    html = as_operator.post(f"/servers/{seed['ast1'].id}/state/", {"state": "active"}, **HTMX).content.decode()
    assert 'data-testid="server-state">Active<' in html
    assert set(Destination.objects.filter(server=seed["ast1"]).values_list("admin_state", flat=True)) == {"active"}


def test_disable_without_a_reason_keeps_the_dialog_open(as_operator, seed, redis):
    response = as_operator.post(f"/servers/{seed['ast1'].id}/state/", {"state": "disabled"}, **HTMX)
    assert response["HX-Retarget"] == "#modal" and response["HX-Reswap"] == "innerHTML"
    assert "Say why this server is disabled." in response.content.decode()
    assert not Destination.objects.filter(admin_state="disabled").exists()


def test_a_plain_form_post_goes_back_to_the_servers(as_operator, seed, redis):
    response = as_operator.post(f"/servers/{seed['ast1'].id}/state/", {"state": "inactive"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_viewer_sees_no_button_and_may_not_post(as_viewer, seed, redis):
    html = as_viewer.get("/").content.decode()
    assert "server-maintenance" not in html and "server-return" not in html and "server-disable" not in html
    assert as_viewer.post(f"/servers/{seed['ast1'].id}/state/", {"state": "inactive"}, **HTMX).status_code == 403
    assert as_viewer.get(f"/servers/{seed['ast1'].id}/confirm/inactive/").status_code == 403
    assert not Destination.objects.filter(admin_state="inactive").exists()


def test_the_state_change_is_post_only(as_operator, seed, redis):
    assert as_operator.get(f"/servers/{seed['ast1'].id}/state/").status_code == 405
    assert as_operator.post("/servers/999999/state/", {"state": "inactive"}).status_code == 404


def test_the_sparkline_sums_the_server_s_sets_per_sample(as_viewer, seed, redis):
    rows, now = seed["rows"], time.time()
    for i in range(5):
        t = round(now - 50 + 10 * i, 1)
        redis.lpush(contract.calls_key(rows[(1, 1)].id), json.dumps({"t": t, "active": 10 + i}))
        redis.lpush(contract.calls_key(rows[(2, 1)].id), json.dumps({"t": t, "active": 5}))
    ast1 = server_html(as_viewer.get("/").content.decode(), seed["ast1"])
    assert 'data-testid="sparkline"' in ast1 and "up to 19, now 19" in ast1


def test_a_server_with_no_calls_all_hour_shows_no_max(as_viewer, seed, redis):
    """Its sparkline said "max 1" (the scale's top) and "up to 1" for an hour of zeros."""
    rows, now = seed["rows"], time.time()
    for i in range(5):
        t = round(now - 50 + 10 * i, 1)
        for setid in (1, 2):
            redis.lpush(contract.calls_key(rows[(setid, 1)].id), json.dumps({"t": t, "active": 0}))
    ast1 = server_html(as_viewer.get("/").content.decode(), seed["ast1"])
    assert 'data-testid="sparkline"' in ast1 and "no calls this hour" in ast1
    assert "max 1" not in ast1 and "up to 1" not in ast1


def test_the_page_polls_its_fragment(as_viewer, seed, redis):
    page = as_viewer.get("/").content.decode()
    assert 'hx-get="/" hx-trigger="every 2s"' in page
    fragment = as_viewer.get("/", **HTMX)
    assert "<html" not in fragment.content.decode() and 'data-testid="servers"' in fragment.content.decode()
    assert "HX-Request" in fragment["Vary"]


@pytest.mark.parametrize("partial", [False, True])
def test_it_makes_a_fixed_number_of_queries_for_50_destinations(client, operator, redis, django_assert_max_num_queries, partial):
    sets = [make_set(n, f"set{n}") for n in (1, 2)]
    dests = [make_destination(s, n) for s in sets for n in range(25)]
    Destination.objects.filter(pk__in=[d.pk for d in dests[:10]]).update(admin_state=AdminState.INACTIVE)
    write_node(redis, destinations={d.id: {"active": 1, "cps": 0.1} for d in dests})
    client.force_login(operator)
    headers = HTMX if partial else {}
    # the per-set board's (session, user, role groups, sets, destinations, table revision, probe
    # timing, servers and their rows, the proxy busy threshold, the alert channels failing for the
    # banner): the Servers view is built from its rows
    with django_assert_max_num_queries(11):
        response = client.get("/", **headers)
    assert response.content.decode().count('<tr id="server-') == 25


def test_a_row_at_zero_is_not_drained_while_its_server_has_calls_in_another_set(as_viewer, seed, redis):
    rows = seed["rows"]
    in_maintenance(seed["ast3"])
    write_node(redis, destinations={rows[(1, 3)].id: {"active": 0}, rows[(2, 3)].id: {"active": 12}})
    board = as_viewer.get("/sets/").content.decode()
    set1 = board[board.index(f'id="dest-{rows[(1, 3)].id}"') :]
    set1 = set1[: set1.index("</tr>")]
    assert "safe to restart" not in set1 and "draining — 12 calls on ast3 through set 2" in set1
    detail = as_viewer.get(f"/destinations/{rows[(1, 3)].id}/").content.decode()
    assert "safe to restart" not in detail and "12 calls on ast3 through set 2" in detail
    write_node(redis, destinations={rows[(1, 3)].id: {"active": 0}, rows[(2, 3)].id: {"active": 0}})
    assert "drained — safe to restart" in as_viewer.get(f"/destinations/{rows[(1, 3)].id}/").content.decode()


def test_a_row_at_zero_is_not_safe_to_restart_while_another_set_sends_its_box_calls(as_viewer, seed, redis):
    # Found by hand: maintenance in set 1 only, no call up anywhere at that second. The row said
    # "drained — safe to restart"; the next call through set 2 landed on the box.
    rows = seed["rows"]
    Destination.objects.filter(pk=rows[(1, 3)].pk).update(admin_state=AdminState.INACTIVE)
    write_node(redis, destinations={rows[(1, 3)].id: {"active": 0}, rows[(2, 3)].id: {"active": 0}})
    board = as_viewer.get("/sets/").content.decode()
    set1 = board[board.index(f'id="dest-{rows[(1, 3)].id}"') :]
    set1 = set1[: set1.index("</tr>")]
    assert "safe to restart" in set1 and "drained" not in set1
    assert "not safe to restart — ast3 still takes new calls through set 2" in set1
    detail = as_viewer.get(f"/destinations/{rows[(1, 3)].id}/").content.decode()
    assert "drained — safe to restart" not in detail and "ast3 still takes new calls through set 2" in detail
    # set 2 too: now nothing sends it calls, and none are up
    Destination.objects.filter(pk=rows[(2, 3)].pk).update(admin_state=AdminState.INACTIVE)
    assert "drained — safe to restart" in as_viewer.get(f"/destinations/{rows[(1, 3)].id}/").content.decode()
