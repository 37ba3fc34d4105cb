"""The whole system working together, as an ops engineer sees it at 3 a.m.

Beat ticks, the Celery worker probes three SIPp "Asterisks" with OPTIONS, the proxy routes
SIPp calls by what the prober wrote to Redis, and the panel shows it. Nothing is called by
hand: a server is killed or put into maintenance, and each part must react on its own.
"""

import re
import time

import pytest
from django.test import Client

from tests.e2e_system.conftest import NODE_NAME, badge, dest_row, node_row, row_active

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

# uac.xml scenario lines: 4 is the 200 for the INVITE, 8 the 200 for the BYE.
INVITE_OK, BYE_OK = "4_200_Recv", "8_200_Recv"


def _viewer_client(viewer):
    client = Client()
    client.force_login(viewer)
    return client


def _dashboard(client, partial):
    headers = {"HTTP_HX_REQUEST": "true"} if partial else {}
    response = client.get("/sets/", **headers)  # the per-set view: one row per destination
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _wait_dashboard(client, predicate, what, deadline_s=8.0):
    """Poll the htmx partial, as the page does, until predicate(html) holds."""
    end = time.monotonic() + deadline_s
    html = ""
    while time.monotonic() < end:
        html = _dashboard(client, partial=True)
        if predicate(html):
            return html
        time.sleep(0.2)
    raise AssertionError(f"the dashboard never showed {what} within {deadline_s}s:\n{html[:4000]}")


def _health_events(dest, new):
    from dispatcher.models import StateEvent

    return list(StateEvent.objects.filter(destination=dest, kind="health", new=new).values_list("old", "new", "cause"))


def test_probes_bring_every_destination_up(system):
    from dispatcher.models import Destination

    health = system.wait_health({1: "up", 2: "up", 3: "up"})
    for n in (1, 2, 3):
        dest = Destination.objects.get(pk=system.dests[n].id)
        assert dest.health == "up", f"ast{n}: lb:health says up but PostgreSQL says {dest.health}"
        assert dest.health_changed is not None
        assert health[n]["rtt_ms"] is not None, health[n]
        assert ("unknown", "up", "probe") in _health_events(dest, "up"), f"ast{n} has no probe event unknown -> up"


def test_a_killed_server_goes_down_and_only_its_calls_fail(system, viewer):
    from dispatcher.models import Destination

    calls, rate, hold_ms = 300, 50, 1000
    system.wait_health({1: "up", 2: "up", 3: "up"})
    uac = system.uac(calls=calls, rate=rate, hold_ms=hold_ms, recv_timeout_ms=2000)
    system.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 20, "20 calls up on ast2")
    at_death = system.kill_uas_after_dump(2)
    system.wait_health({2: "down"}, deadline_s=10)
    marked = time.time()
    # Counters that include every INVITE the proxy sent ast2 before it was seen down.
    before = system.dest_counters(2, system.heartbeat_after(marked))
    uac.wait(60)
    after = system.dest_counters(2, system.heartbeat_after(time.time()))
    report = system.report(uac) + "\n" + system.celeries.report()

    dest = Destination.objects.get(pk=system.dests[2].id)
    assert dest.health == "down", f"lb:health says down but PostgreSQL says {dest.health}"
    # From up, or from the suspect mark the proxy set on the ICMP error; either way a probe decided.
    downs = _health_events(dest, "down")
    assert downs and all(cause == "probe" for _, _, cause in downs), f"ast2 was not taken down by a probe: {downs}"
    assert after["invites"] == before["invites"], f"ast2 got INVITEs after it was marked down: {before} -> {after}\n{report}"

    answered, ended = uac.count(INVITE_OK), uac.count(BYE_OK)
    failed = int(uac.stats()["FailedCall(C)"])
    # Up on ast2 when it died: every call it ever answered, less the BYEs it had taken by its last dump.
    up_on_ast2 = after["answered"] - at_death.get("BYE_Recv", 0)
    assert up_on_ast2 > 0, f"the kill must catch calls up on ast2, or this proves nothing: {after} {at_death}"
    assert answered == calls, f"{calls - answered} calls never got a 200 after ast2 died\n{report}"
    assert failed == calls - ended, f"failed={failed} answered={answered} ended={ended}\n{report}"
    assert failed <= up_on_ast2, f"{failed} calls failed, more than the {up_on_ast2} that were up on ast2\n{report}"

    client = _viewer_client(viewer)
    for partial in (False, True):
        html = _dashboard(client, partial)
        colour, label = badge(dest_row(html, dest.id), "health-badge")
        assert (colour, label) == ("red", "Down"), f"ast2 shows {label} ({colour}) (partial={partial})"
        for n in (1, 3):
            assert badge(dest_row(html, system.dests[n].id), "health-badge")[1] == "Up"
        if not partial:
            assert 'hx-get="/sets/"' in html and 'hx-trigger="every 2s"' in html, "the page no longer polls its partial"
    node = node_row(html, NODE_NAME)
    assert node is not None, "the proxy node is not listed on the dashboard"
    assert node[0] == "green", f"the proxy node shows a stale heartbeat: {node[1]}"
    assert "no proxy reporting" not in html

    for n in (1, 3):
        system.ast[n].stop()
        counts = system.ast[n].counts()
        assert counts["BYE_Recv"] == counts["INVITE_Recv"] > 0, f"every call on the surviving ast{n} ends normally: {counts}"


# The regression this guards: libuv stops polling a connected UDP socket that reported the dead
# server's ICMP error, so the restarted server's replies went unread until the proxy restarted.
def test_a_restarted_server_comes_back_up_and_takes_calls(system):
    from dispatcher.models import Destination

    system.wait_health({1: "up", 2: "up", 3: "up"})
    system.ast[2].kill()
    # A few calls make the proxy see the dead server itself (ICMP, suspect, probe_now), as traffic would.
    system.run_uac(calls=9, rate=30, hold_ms=50, timeout=30)
    system.wait_health({2: "down"}, deadline_s=10)

    system.restart_uas(2)
    health = system.wait_health({2: "up"}, deadline_s=10)
    dest = Destination.objects.get(pk=system.dests[2].id)
    assert dest.health == "up", f"lb:health says up but PostgreSQL says {dest.health}"
    back = [e for e in _health_events(dest, "up") if e[0] == "down"]
    assert back and all(cause == "probe" for _, _, cause in back), f"no probe event down -> up: {_health_events(dest, 'up')}"
    assert health[2]["since"] is not None

    # suspect_hold_ms is 30 s (default), so calls reaching ast2 now prove the prober cleared the mark.
    before = system.dest_counters(2, system.heartbeat_after(time.time()))
    uac = system.run_uac(calls=30, rate=60, hold_ms=50, recv_timeout_ms=2000, timeout=30)
    after = system.dest_counters(2, system.heartbeat_after(time.time()))
    assert after["invites"] - before["invites"] >= 5, f"the restarted ast2 takes too few calls: {before} -> {after}"
    assert after["failovers"] == before["failovers"], (
        f"calls sent to the restarted ast2 failed over away from it: {before} -> {after}\n" + system.proxy.tail(1500)
    )
    assert uac.proc.returncode == 0, "calls failed after ast2 came back (callers wait 2 s for a 200)\n" + system.report(uac)
    counts = system.wait_uas(
        lambda c: c[2].get("BYE_Recv", 0) == c[2].get("INVITE_Recv", 0) >= 5, "every call on the restarted ast2 ended on it", 5.0
    )
    assert counts[2]["ACK_Unexp"] == 0, counts[2]


def _csrf_token(html):
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert m, "the confirmation form carries no CSRF token"
    return m.group(1)


def test_maintenance_from_the_panel_drains_a_server(system, operator, viewer):
    from dispatcher.models import Destination, StateEvent

    a_calls, b_calls = 60, 150
    system.wait_health({1: "up", 2: "up", 3: "up"})
    calls_a = system.uac(calls=a_calls, rate=60, hold_ms=6000)
    up = system.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == a_calls, f"{a_calls} calls up")
    on_ast3 = up[3]["INVITE_Recv"]
    assert on_ast3 > 0, up
    dest = system.dests[3]

    # The operator's browser: the confirmation page, then its form posted with the CSRF token.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    confirm = browser.get(f"/destinations/{dest.id}/confirm/inactive/")
    assert confirm.status_code == 200
    response = browser.post(
        f"/destinations/{dest.id}/state/",
        {"state": "inactive", "reason": "3 a.m. kernel patch", "csrfmiddlewaretoken": _csrf_token(confirm.content.decode())},
    )
    assert response.status_code == 302, response.content[:2000]
    assert Destination.objects.get(pk=dest.id).admin_state == "inactive"
    event = StateEvent.objects.filter(destination=dest, kind="admin").first()
    assert (event.old, event.new, event.cause, event.actor_id) == ("active", "inactive", "user", operator.id)
    system.wait_table(int(system.redis.get("lb:table:version")))

    viewer_client = _viewer_client(viewer)
    html = _wait_dashboard(viewer_client, lambda h: 'data-testid="draining"' in dest_row(h, dest.id), "ast3 draining")
    assert badge(dest_row(html, dest.id), "admin-badge")[1] == "Maintenance"
    assert row_active(dest_row(html, dest.id)) > 0, "ast3 is draining: its calls are still up"

    calls_b = system.run_uac(calls=b_calls, rate=75, hold_ms=50)
    assert calls_b.proc.returncode == 0, system.report(calls_b)
    calls_a.wait(30)
    assert calls_a.proc.returncode == 0, "calls in progress on ast3 must end normally\n" + system.report(calls_a)

    html = _wait_dashboard(viewer_client, lambda h: 'data-testid="drained"' in dest_row(h, dest.id), "ast3 drained")
    assert row_active(dest_row(html, dest.id)) == 0
    counts = system.stop_all_uas()
    assert counts[3]["INVITE_Recv"] == on_ast3, f"ast3 got new calls in maintenance: {counts}"
    assert counts[3]["BYE_Recv"] == on_ast3, f"the BYEs of ast3's calls must still reach it: {counts}"
    assert counts[1]["INVITE_Recv"] + counts[2]["INVITE_Recv"] == a_calls - on_ast3 + b_calls, counts
