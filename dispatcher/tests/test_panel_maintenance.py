"""Maintenance, drain, disable, return to service: POST with CSRF, through services.set_state, answered with the row."""

import pytest

from dispatcher.choices import AdminState
from dispatcher.models import Destination, StateEvent
from dispatcher.tests.panel_support import write_node

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def state_url(dest):
    return f"/destinations/{dest.id}/state/"


def test_the_confirmation_names_the_server_and_its_active_calls(as_operator, cluster, redis):
    write_node(redis, destinations={cluster["ast1"].id: {"active": 17}})
    html = as_operator.get(f"/destinations/{cluster['ast1'].id}/confirm/inactive/", **HTMX).content.decode()
    assert "Put into maintenance ast1?" in html and "sip:127.0.0.1:25081" in html
    assert 'data-testid="confirm-active">17<' in html and "calls in progress go on" in html
    assert f'hx-target="#dest-{cluster["ast1"].id}"' in html and 'hx-swap="outerHTML"' in html
    assert "<html" not in html


def test_the_confirmation_is_a_full_page_without_htmx(as_operator, cluster, redis):
    html = as_operator.get(f"/destinations/{cluster['ast1'].id}/confirm/inactive/").content.decode()
    assert "<html" in html and "hx-disable" in html


def test_it_puts_a_server_into_maintenance_and_returns_the_row(as_operator, operator, cluster, redis):
    ast1 = cluster["ast1"]
    response = as_operator.post(state_url(ast1), {"state": "inactive", "reason": "kernel update"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith(f'<tr id="dest-{ast1.id}"') and ">I</td>" in html
    assert '<div id="modal" hx-swap-oob="true"></div>' in html
    ast1.refresh_from_db()
    assert ast1.admin_state == AdminState.INACTIVE
    event = StateEvent.objects.get(destination=ast1)
    assert (event.kind, event.old, event.new, event.cause, event.actor, event.reason) == (
        "admin",
        "active",
        "inactive",
        "user",
        operator,
        "kernel update",
    )


def test_it_returns_a_server_to_service(as_operator, cluster, redis):
    ast2 = cluster["ast2"]
    html = as_operator.post(state_url(ast2), {"state": "active"}, **HTMX).content.decode()
    assert ">A</td>" in html and 'data-testid="maintenance"' in html
    assert Destination.objects.get(pk=ast2.pk).admin_state == AdminState.ACTIVE


def test_disable_asks_for_a_reason(as_operator, cluster, redis):
    ast1 = cluster["ast1"]
    response = as_operator.post(state_url(ast1), {"state": "disabled", "reason": " "}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#modal" and response["HX-Reswap"] == "innerHTML"
    assert "Say why this server is disabled." in response.content.decode()
    assert Destination.objects.get(pk=ast1.pk).admin_state == AdminState.ACTIVE
    assert not StateEvent.objects.exists()
    as_operator.post(state_url(ast1), {"state": "disabled", "reason": "disk failed"}, **HTMX)
    assert StateEvent.objects.get().reason == "disk failed"


def test_a_plain_form_post_redirects_back(as_operator, cluster, redis):
    ast1 = cluster["ast1"]
    response = as_operator.post(state_url(ast1), {"state": "inactive", "next": f"/destinations/{ast1.id}/"})
    assert response.status_code == 302 and response["Location"] == f"/destinations/{ast1.id}/"
    response = as_operator.post(state_url(ast1), {"state": "active", "next": "https://evil.example/"})
    assert response["Location"] == "/sets/"


def test_a_plain_form_with_errors_says_which_field(as_operator, cluster, redis):
    response = as_operator.post(state_url(cluster["ast1"]), {"state": "disabled"})
    assert response.status_code == 400
    assert b'<p class="field-error">Say why this server is disabled.</p>' in response.content


def test_it_refuses_an_unknown_state(as_operator, cluster, redis):
    response = as_operator.post(state_url(cluster["ast1"]), {"state": "exploded"}, **HTMX)
    assert b"Select a valid choice" in response.content
    assert not StateEvent.objects.exists()


def test_it_needs_the_csrf_token(client, operator, cluster, redis):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post(state_url(cluster["ast1"]), {"state": "inactive"}).status_code == 403
    assert Destination.objects.get(pk=cluster["ast1"].pk).admin_state == AdminState.ACTIVE


def test_it_refuses_viewer(client, viewer, cluster, redis):
    client.force_login(viewer)
    assert client.post(state_url(cluster["ast1"]), {"state": "inactive"}, **HTMX).status_code == 403
    assert client.get(f"/destinations/{cluster['ast1'].id}/confirm/inactive/").status_code == 403
    assert Destination.objects.get(pk=cluster["ast1"].pk).admin_state == AdminState.ACTIVE


def test_it_publishes_the_table_after_the_change(as_operator, cluster, redis, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        as_operator.post(state_url(cluster["ast1"]), {"state": "inactive"}, **HTMX)
    from lbcore.contract import TABLE_KEY, decode_table

    table = decode_table(redis.get(TABLE_KEY))
    assert table.destination(cluster["ast1"].id).admin_state == "inactive"
