"""The audit log: every StateEvent, filterable by destination, kind, cause and user, paginated."""

from zoneinfo import ZoneInfo

import pytest

from dispatcher.choices import AdminState
from dispatcher.models import StateEvent
from dispatcher.services import set_state


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def history(cluster, operator, admin_user):
    set_state(cluster["ast1"], AdminState.INACTIVE, actor=operator, reason="patch")
    set_state(cluster["ast1"], AdminState.ACTIVE, actor=operator)
    set_state(cluster["ast2"], AdminState.ACTIVE, actor=admin_user, cause="api", reason="script")
    return cluster


def rows(html):
    return html.split('data-testid="events"')[1].split("<tbody>")[1].split("</tbody>")[0].count("<tr>")


def test_it_lists_every_event(as_viewer, history, redis):
    html = as_viewer.get("/audit/").content.decode()
    assert rows(html) == 3 and "3 events" in html and "patch" in html and "script" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("destination={ast1}", 2),
        ("cause=api", 1),
        ("cause=user", 2),
        ("user={operator}", 2),
        ("kind=config", 0),
    ],
)
def test_it_filters(as_viewer, history, operator, redis, query, expected):
    query = query.format(ast1=history["ast1"].id, operator=operator.id)
    html = as_viewer.get(f"/audit/?{query}").content.decode()
    assert (rows(html) if expected else 0) == expected
    if not expected:
        assert "No events." in html


def test_it_paginates_and_keeps_the_filter(as_viewer, cluster, redis, django_assert_max_num_queries):
    StateEvent.objects.bulk_create(
        StateEvent(destination=cluster["ast1"], subject="set 1 ast1", kind="health", old="up", new="down", cause="probe")
        for _ in range(120)
    )
    with django_assert_max_num_queries(9):  # 8, and the alert channels failing (the banner on every page)
        html = as_viewer.get("/audit/?cause=probe").content.decode()
    assert rows(html) == 50 and "page 1 of 3" in html and "?cause=probe&amp;page=2" in html
    assert rows(as_viewer.get("/audit/?cause=probe&page=3").content.decode()) == 20


def test_its_times_name_their_time_zone(as_viewer, history, redis, settings):
    settings.TIME_ZONE = "America/New_York"
    event = StateEvent.objects.order_by("created").first()
    local = event.created.astimezone(ZoneInfo("America/New_York"))
    html = as_viewer.get("/audit/").content.decode()
    assert f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}" in html
