"""The Django admin lists servers, renames them through services and acts on every set at once."""

import pytest
from django.urls import reverse

from dispatcher.models import Destination, DispatcherSet, Server, StateEvent


@pytest.fixture
def ast1(db):
    for setid in (1, 2):
        dset = DispatcherSet.objects.create(setid=setid)
        Destination.objects.create(dset=dset, uri="sip:10.0.0.11:5080", duid="ast1")
    return Server.objects.get()


def test_the_changelist_and_form_render(admin_client, ast1):
    response = admin_client.get(reverse("admin:dispatcher_server_changelist"), {"q": "ast1"})
    assert response.status_code == 200 and b"10.0.0.11:5080" in response.content
    assert admin_client.get(reverse("admin:dispatcher_server_change", args=[ast1.pk])).status_code == 200


def test_renaming_in_the_admin_is_audited_and_sticks(admin_client, admin_user, ast1):
    response = admin_client.post(reverse("admin:dispatcher_server_change", args=[ast1.pk]), {"name": "Asterisk A"})
    assert response.status_code == 302, response.content.decode()[:2000]
    ast1.refresh_from_db()
    assert (ast1.name, ast1.name_edited) == ("Asterisk A", True)
    event = StateEvent.objects.get(subject__startswith="renamed server")
    assert (event.new, event.actor, event.reason) == ("Asterisk A", admin_user, "Django admin")


def test_maintenance_from_the_admin_covers_every_set(admin_client, ast1, monkeypatch):
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)
    response = admin_client.post(
        reverse("admin:dispatcher_server_changelist"), {"action": "make_inactive", "_selected_action": [ast1.pk]}
    )
    assert response.status_code == 302
    assert set(ast1.destinations.values_list("admin_state", flat=True)) == {"inactive"}
    assert StateEvent.objects.filter(server=ast1, kind="admin").count() == 1


def test_servers_are_not_added_or_deleted_in_the_admin(admin_client, ast1):
    assert admin_client.get(reverse("admin:dispatcher_server_add")).status_code == 403
    assert admin_client.get(reverse("admin:dispatcher_server_delete", args=[ast1.pk])).status_code == 403


def test_a_name_another_server_has_is_a_field_error(admin_client, ast1):
    other = Destination.objects.create(dset=DispatcherSet.objects.get(setid=1), uri="sip:10.0.0.12:5080", duid="ast2").server
    response = admin_client.post(reverse("admin:dispatcher_server_change", args=[other.pk]), {"name": "AST1"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["name"] and "udp 10.0.0.11:5080" in errors["name"][0]
    assert Server.objects.get(pk=other.pk).name == "ast2"
    assert not StateEvent.objects.filter(subject__startswith="renamed server").exists()
