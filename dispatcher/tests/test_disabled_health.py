"""A disabled server is probed by nobody: its health is unknown ("not probed — disabled"), never the
"Down" its last probes said before it was disabled, and it is not counted down, on the panel, the API
and /metrics alike (lbcore.rules.known_health)."""

from pathlib import Path

import pytest

from dispatcher.models import Destination, Server, StateEvent
from dispatcher.services import import_dispatcher_list
from dispatcher.tests.panel_support import write_health, write_node
from dispatcher.tests.test_metrics_health import samples
from lbcore import contract

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"
WHY = "not probed — disabled"


@pytest.fixture
def seed(db, redis):
    """ast1..ast3 in set 1 and set 2, all up, a proxy reporting; then ast1 went down and was disabled
    (its rows keep the "down" of their last probes: nothing probes them since)."""
    import_dispatcher_list(SEED.read_text())
    StateEvent.objects.all().delete()
    for dest in Destination.objects.all():
        write_health(redis, dest.id, contract.UP)
    Destination.objects.update(health=contract.UP)
    servers = {s.name: s for s in Server.objects.all()}
    for dest in Destination.objects.filter(server=servers["ast1"]):
        write_health(redis, dest.id, contract.DOWN, rtt_ms=None, code=None, reason="3 probes unanswered")
    Destination.objects.filter(server=servers["ast1"]).update(health=contract.DOWN, admin_state="disabled")
    write_node(redis)
    return servers


@pytest.fixture
def panel(client, viewer):
    client.force_login(viewer)
    return client


def _server_row(html, server):
    start = html.index(f'id="server-{server.id}"')
    return html[start : html.index("</tr>", start)]


def test_the_servers_view_says_not_probed_and_does_not_count_it_down(panel, seed):
    html = panel.get("/").content.decode()
    ast1 = _server_row(html, seed["ast1"])
    assert 'data-testid="server-health" title="not probed — disabled">Unknown<' in ast1
    assert f'data-testid="server-not-probed">{WHY}<' in ast1 and "no reply" not in ast1
    assert 'data-testid="down"><b class="">0</b> down' in html


def test_the_sets_view_says_not_probed_and_does_not_count_it_down(panel, seed):
    html = panel.get("/sets/").content.decode()
    for dest in Destination.objects.filter(server=seed["ast1"]):
        start = html.index(f'id="dest-{dest.id}"')
        row = html[start : html.index("</tr>", start)]
        assert f'title="{WHY}">Unknown<' in row and f'data-testid="not-probed">{WHY}<' in row
        assert 'data-state="D"' in row  # no stale I from the probes of before
    assert 'data-testid="down"><b class="">0</b> down' in html
    assert '<span class="c-green">2 up</span>\n' in html and '<span class="c-red">1 down</span>' not in html  # per set


def test_the_destination_page_says_not_probed(panel, seed):
    dest = Destination.objects.filter(server=seed["ast1"]).first()
    html = panel.get(f"/destinations/{dest.id}/").content.decode()
    assert 'data-testid="health-badge">Unknown<' in html and f'data-testid="not-probed">{WHY}<' in html


def test_the_api_says_unknown_with_why(as_viewer, seed):
    servers = {s["name"]: s for s in as_viewer.get("/api/v1/servers/").json()["results"]}
    ast1, ast2 = servers["ast1"], servers["ast2"]
    assert (ast1["admin_state"], ast1["health"], ast1["health_unknown"], ast1["rtt_ms"]) == ("disabled", "unknown", WHY, None)
    assert (ast2["health"], ast2["health_unknown"]) == ("up", None)
    dest = Destination.objects.filter(server=seed["ast1"]).first()
    body = as_viewer.get(f"/api/v1/destinations/{dest.id}/").json()
    assert (body["health"], body["health_unknown"], body["kamailio_flags"]) == ("unknown", WHY, "D")
    assert as_viewer.get("/api/v1/destinations/?health=down").json()["count"] == 0
    assert {d["id"] for d in as_viewer.get("/api/v1/destinations/?health=unknown").json()["results"]} == set(
        Destination.objects.filter(server=seed["ast1"]).values_list("id", flat=True)
    )
    stats = {d["id"]: d for d in as_viewer.get("/api/v1/stats/").json()["destinations"]}
    assert (stats[dest.id]["health"], stats[dest.id]["health_unknown"], stats[dest.id]["rtt_ms"]) == ("unknown", WHY, None)


def test_metrics_say_unknown_not_down(anonymous, seed):
    found = samples(anonymous.get("/metrics"))
    ast1 = seed["ast1"]

    def server(health):
        return ("lbpanel_server_health", tuple(sorted({"id": str(ast1.id), "server": "ast1", "health": health}.items())))

    assert (found[server("unknown")], found[server("down")]) == (1, 0)
    down = [k for k, v in found.items() if k[0] == "lbpanel_destination_health" and ("health", "down") in k[1] and v]
    assert down == []


def test_a_server_disabled_in_one_set_shows_the_health_of_the_sets_that_probe_it(as_viewer, panel, seed, redis):
    """ast2 disabled in set 2 while it was down there, up again in set 1 (probed through it): it is up."""
    ast2 = seed["ast2"]
    two = Destination.objects.get(server=ast2, dset__setid=2)
    write_health(redis, two.id, contract.DOWN, rtt_ms=None, code=None)
    Destination.objects.filter(pk=two.pk).update(health=contract.DOWN, admin_state="disabled")
    api = {s["name"]: s for s in as_viewer.get("/api/v1/servers/").json()["results"]}["ast2"]
    assert (api["admin_state"], api["health"], api["health_unknown"], api["rtt_ms"]) == ("mixed", "up", None, 4.2)
    assert 'data-testid="server-health" >Up<' in _server_row(panel.get("/").content.decode(), ast2)
