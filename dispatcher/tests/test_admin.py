"""The Django admin is usable: every changelist and change form renders, and saves go through services."""

import re

import pytest
from django.urls import reverse

from dispatcher.models import Destination, DispatcherSet, StateEvent


@pytest.fixture
def table(db):
    dset = DispatcherSet.objects.create(setid=1, name="outbound")
    Destination.objects.create(dset=dset, uri="sip:127.0.0.1:5081", duid="ast1", weight=50)
    return dset


@pytest.mark.parametrize("model", ["dispatcherset", "destination", "sourcerule", "probesettings", "proxysettings", "stateevent"])
def test_changelists_render(admin_client, table, model):
    response = admin_client.get(reverse(f"admin:dispatcher_{model}_changelist"), {"q": "ast"})
    assert response.status_code == 200


def test_destination_search_and_filters(admin_client, table):
    response = admin_client.get(reverse("admin:dispatcher_destination_changelist"), {"q": "ast1", "admin_state__exact": "active"})
    assert b"sip:127.0.0.1:5081" in response.content


def test_a_new_destination_in_the_admin_starts_with_the_forms_weight(admin_client, table):
    # Not the model's 0, which in a weighted set makes a backup.
    form = admin_client.get(reverse("admin:dispatcher_destination_add")).context["adminform"].form
    assert form.initial["weight"] == 1
    form = admin_client.get(reverse("admin:dispatcher_destination_add"), {"dset": table.pk}).context["adminform"].form
    assert form.initial["weight"] == 50


def test_saving_in_the_admin_is_audited(admin_client, table, monkeypatch):
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)
    dest = Destination.objects.get()
    url = reverse("admin:dispatcher_destination_change", args=[dest.pk])
    form = {
        "dset": table.pk,
        "uri": dest.uri,
        "priority": 0,
        "weight": 60,
        "rweight": 0,
        "duid": "ast1",
        "maxload": 0,
        "attrs": "",
        "extra_flags": 0,
        "description": "",
        "admin_state": "inactive",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    dest.refresh_from_db()
    assert dest.weight == 60 and dest.attrs == "weight=60;duid=ast1"
    assert StateEvent.objects.filter(destination=dest, kind="admin", new="inactive", cause="user").exists()
    assert StateEvent.objects.filter(destination=dest, kind="config").exists()


def test_the_admin_states_one_minimum_per_number_field(admin_client, table):
    """As the panel: -1 was "greater than or equal to 0", then 0 "greater than or equal to 1"."""
    from dispatcher.models import ProbeSettings

    ProbeSettings.load()
    url = reverse("admin:dispatcher_probesettings_change", args=[1])
    page = admin_client.get(url).content.decode()
    field = re.search(r'<input[^>]*name="probing_threshold"[^>]*>', page).group(0)
    assert 'min="1"' in field
    answer = admin_client.post(url, {"ping_interval": 15, "probing_threshold": -1, "inactive_threshold": 1}).content.decode()
    assert "greater than or equal to 1." in answer and "greater than or equal to 0." not in answer


def test_the_audit_log_cannot_be_edited(admin_client, table):
    event = StateEvent.objects.create(subject="x", kind="config", cause="user")
    assert admin_client.get(reverse("admin:dispatcher_stateevent_change", args=[event.pk])).status_code == 200
    assert admin_client.post(reverse("admin:dispatcher_stateevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403


def test_ensure_admin_creates_admin_once(db, monkeypatch, capsys):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    monkeypatch.setenv("LBPANEL_ADMIN_PASSWORD", "correct horse")
    call_command("ensure_admin")
    assert "created user admin" in capsys.readouterr().out
    call_command("ensure_admin")
    later = capsys.readouterr().out
    assert "user admin exists" in later and "manage.py changepassword admin" in later and "correct horse" not in later
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("correct horse")
