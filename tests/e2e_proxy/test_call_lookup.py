"""Issue 13's call lookup, end to end: SIPp calls from two carriers (127.0.0.2 and 127.0.0.3, each a
source rule), ast1 answering every INVITE 503 (a short suspect hold, so it is tried again and again),
ast3 killed mid-run. Through the real proxy and Redis:

- the API finds a failed-over call by its Call-ID: ast1 503 first, then the server that answered 200,
  in that order, with setup_ms, and after the BYE its duration and who hung up;
- both carriers' calls are there under their names;
- in Chromium, the Calls page finds that call by its Call-ID and its ladder shows both servers and codes.
"""

import time

import pytest
from playwright.sync_api import expect

from dispatcher.tests.api_support import client_for
from tests.browser.chromium import log_in
from tests.e2e_proxy.seed_shape import caller

pytestmark = pytest.mark.sipp

CARRIERS = {"127.0.0.2": "carrier-a", "127.0.0.3": "carrier-b"}
CALLS = 20  # from each carrier
HOLD_MS = 300
RECORD_DEADLINE_S = 10.0  # the flusher writes every 100 ms; this only bounds a broken run


def two_carriers(cluster_factory):
    """The cluster with ast1 answering 503, a source rule per carrier into set 1, calls from both,
    ast3 killed once it has taken a few; returns the cluster after both callers finished."""
    from dispatcher.models import DispatcherSet, SourceRule
    from dispatcher.services import save_config

    cluster = cluster_factory(scenarios={1: "uas_503.xml"}, start_proxy=False, suspect_hold_ms=50)
    set1 = DispatcherSet.objects.get(setid=1)
    for address, name in CARRIERS.items():
        save_config(SourceRule(network=f"{address}/32", dset=set1, description=name))
    cluster.version = int(cluster.redis.get("lb:table:version"))
    cluster.start_proxy()
    uacs = [caller(cluster, address, calls=CALLS, rate=10, hold_ms=HOLD_MS) for address in CARRIERS]
    cluster.wait_uas(lambda c: c[3].get("ACK_Recv", 0) >= 3, "ast3 answering a few calls")
    cluster.ast[3].kill()
    for uac in uacs:
        uac.wait(60)
    return cluster


def poll(fn, what):
    """fn() until it returns something truthy, bounded (records reach Redis within ~100 ms)."""
    end = time.monotonic() + RECORD_DEADLINE_S
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"never saw {what} within {RECORD_DEADLINE_S}s")


def failed_over_call(api, refused_by="ast1"):
    """A call `refused_by` refused with 503 and the next server tried answered (two attempts; others
    went via a dead server first), once its BYE is recorded too."""

    def find():
        response = api.get("/api/v1/calls/", {"server": refused_by, "final_code": "2xx", "limit": 100})
        assert response.status_code == 200, response.content
        body = response.json()
        ended = [
            c
            for c in body["results"]
            if c["state"] == "ended" and len(c["attempts"]) == 2 and c["attempts"][0]["server"] == refused_by
        ]
        return ended[0] if ended else None

    return poll(find, "a failed-over call that ended")


def test_the_api_finds_a_failed_over_call_by_call_id(cluster_factory, viewer):
    cluster = two_carriers(cluster_factory)
    api = client_for(viewer)
    listed = failed_over_call(api)
    response = api.get(f"/api/v1/calls/{listed['call_id']}/")
    assert response.status_code == 200, response.content
    call = response.json()
    tried = [(a["server"], a["code"]) for a in call["attempts"]]
    assert tried[0] == ("ast1", 503) and tried[1][1] == 200 and tried[1][0] in ("ast2", "ast3"), (tried, cluster.report())
    assert all(a["ms"] >= 0 for a in call["attempts"])
    assert call["final_code"] == 200 and call["setup_ms"] is not None and call["setup_ms"] >= 0
    assert call["duration_s"] is not None and call["duration_s"] >= HOLD_MS / 1000 - 0.1
    assert call["ended_by"] == "caller" and call["carrier"] in CARRIERS.values()
    # ast3 died mid-run: a call that tried it says so, with no code and the reason
    died = api.get("/api/v1/calls/", {"server": "ast3", "limit": 100}).json()["results"]
    assert any(a["server"] == "ast3" and a["code"] is None and a["reason"] for c in died for a in c["attempts"]), died
    for name in CARRIERS.values():
        assert api.get("/api/v1/calls/", {"carrier": name}).json()["results"], f"no call of {name}"


@pytest.mark.browser
def test_the_calls_page_shows_the_ladder_of_a_failed_over_call(cluster_factory, viewer, page):
    two_carriers(cluster_factory)
    call = failed_over_call(client_for(viewer))
    winner = call["attempts"][-1]["server"]
    log_in(page, "viewer")
    page.goto("/calls/")
    page.fill("#id_call_id", call["call_id"])
    page.get_by_test_id("call-search").get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("call-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"ast1 (503) → {winner} (200)")
    rows.first.get_by_role("link").click()
    ladder = page.get_by_test_id("ladder")
    expect(ladder).to_be_visible()
    codes = ladder.get_by_test_id("hop-code")
    expect(codes).to_have_text(["503", "200"])
    expect(ladder.get_by_test_id("hop-reply").nth(0)).to_contain_text("ast1")
    expect(ladder.get_by_test_id("hop-reply").nth(1)).to_contain_text(winner)
    expect(ladder.get_by_test_id("hop-end")).to_contain_text("BYE by the caller")
