"""A destination's host name that stopped resolving on a live proxy (lb:dnsfail:<node>, rewritten by its
heartbeat) shows on the server's row and in the API: when, why, and the addresses still in use.
While no proxy reports, what the last ones saw shows as unknown, with who saw it; it is not dropped."""

import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from dispatcher.models import Destination
from dispatcher.tests.api_support import client_for
from dispatcher.tests.panel_support import make_set, write_node
from lbcore import contract


@pytest.fixture
def by_name(db):
    return Destination.objects.create(dset=make_set(1, "outbound"), uri="sip:ast.example.test", duid="ast1")


def warn(redis, dest, since, node="proxy-a", why="NXDOMAIN", using=("127.0.0.1:5070",)):
    doc = contract.encode_dns_warning(node, "sip:ast.example.test", why, since, using)
    redis.hset(contract.dns_key(node), str(dest.pk), doc)


def hhmm(epoch):
    return timezone.localtime(datetime.fromtimestamp(epoch, tz=UTC)).strftime("%H:%M")


def test_the_server_row_says_the_name_stopped_resolving_and_what_is_used(client, operator, by_name, redis):
    write_node(redis)
    since = time.time() - 120
    warn(redis, by_name, since)
    client.force_login(operator)
    page = client.get("/").content.decode()
    expected = f"DNS: sip:ast.example.test stopped resolving at {hhmm(since)} (NXDOMAIN); using last known 127.0.0.1:5070"
    assert expected in page
    assert 'data-testid="server-dns-warning"' in page


def test_the_per_set_board_shows_it_on_the_row_too(client, operator, by_name, redis):
    write_node(redis)
    warn(redis, by_name, time.time())
    client.force_login(operator)
    page = client.get("/sets/").content.decode()
    assert 'data-testid="dns-warning"' in page
    assert "(NXDOMAIN); using last known 127.0.0.1:5070" in page


def test_no_warning_no_badge(client, operator, by_name, redis):
    write_node(redis)
    client.force_login(operator)
    assert "dns-warning" not in client.get("/").content.decode()
    assert "dns-warning" not in client.get("/sets/").content.decode()


def test_the_api_gives_the_warning_and_null_without_one(operator, by_name, redis):
    write_node(redis)
    api = client_for(operator)
    assert api.get(f"/api/v1/servers/{by_name.server_id}/").json()["dns_warning"] is None
    since = time.time()
    warn(redis, by_name, since, node="proxy-a")
    body = api.get(f"/api/v1/servers/{by_name.server_id}/").json()
    assert body["dns_warning"] == (
        f"DNS: sip:ast.example.test stopped resolving at {hhmm(since)} (NXDOMAIN); using last known 127.0.0.1:5070"
    )


def test_a_name_that_never_resolved_says_it_is_not_used(operator, by_name, redis):
    write_node(redis)
    warn(redis, by_name, time.time(), why="SERVFAIL (REFUSED)", using=())
    body = client_for(operator).get(f"/api/v1/servers/{by_name.server_id}/").json()
    assert "(SERVFAIL (REFUSED)); never resolved: not used" in body["dns_warning"]


def test_metrics_flag_the_server_whose_name_fails(client, by_name, redis):
    from dispatcher.tests.test_metrics_health import samples

    labels = (("id", str(by_name.server_id)), ("server", by_name.server.name))
    write_node(redis)
    assert samples(client.get("/metrics"))[("lbpanel_server_dns_failing", labels)] == 0
    warn(redis, by_name, time.time())
    assert samples(client.get("/metrics"))[("lbpanel_server_dns_failing", labels)] == 1


def test_with_no_proxy_reporting_the_last_failure_seen_is_unknown_not_dropped(client, operator, by_name, redis):
    # proxy-a found the name failing, then died: its heartbeat expired, its failures stay behind.
    since = time.time() - 300
    warn(redis, by_name, since, node="proxy-a")
    body = client_for(operator).get(f"/api/v1/servers/{by_name.server_id}/").json()
    assert body["dns_warning"] == (
        f"DNS unknown: no proxy is looking up sip:ast.example.test; proxy proxy-a found it failing from {hhmm(since)} "
        "(NXDOMAIN) until it stopped reporting"
    )
    from dispatcher.tests.test_metrics_health import samples

    labels = (("id", str(by_name.server_id)), ("server", by_name.server.name))
    assert ("lbpanel_server_dns_failing", labels) not in samples(client.get("/metrics"))  # unknown: absent, not 0


def test_a_live_proxy_that_resolves_the_name_outweighs_a_dead_ones_failure(operator, by_name, redis):
    write_node(redis, "proxy-b")  # live, and not complaining: the name resolves there
    warn(redis, by_name, time.time(), node="proxy-a")  # proxy-a stopped reporting
    assert client_for(operator).get(f"/api/v1/servers/{by_name.server_id}/").json()["dns_warning"] is None
