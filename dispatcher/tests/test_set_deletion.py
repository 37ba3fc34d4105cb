"""Deleting a set follows one rule whoever asks (services.delete_set): a set that is the default set,
that source rules send traffic to, or that still has destinations stays, and each way of asking says
why: the API with 409, the panel and the Django admin with a message, import --replace in its output."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from dispatcher.models import Destination, DispatcherSet, ProxySettings, SourceRule, StateEvent
from dispatcher.tests.api_support import client_for

WHY = {
    "destinations": "Set 1 still has 1 destination(s); delete or move them first.",
    "rules": "Source rules send traffic to set 2 (203.0.113.10/32); delete or move them first.",
    "default": "Set 3 is the default set in the proxy settings; choose another default first.",
}


@pytest.fixture
def sets(db):
    used = {use: DispatcherSet.objects.create(setid=setid) for setid, use in enumerate(WHY, start=1)}
    Destination.objects.create(dset=used["destinations"], uri="sip:127.0.0.1:5081")
    SourceRule.objects.create(network="203.0.113.10/32", dset=used["rules"])
    proxy = ProxySettings.load()
    proxy.default_set = used["default"]
    proxy.save()
    return used


def all_kept():
    return DispatcherSet.objects.count() == 3 and not StateEvent.objects.filter(subject__startswith="deleted").exists()


@pytest.mark.parametrize("use", WHY)
def test_the_api_refuses_with_409(admin_user, sets, use):
    response = client_for(admin_user).delete(f"/api/v1/sets/{sets[use].setid}/")
    assert response.status_code == 409 and response.json() == {"setid": [WHY[use]]}
    assert all_kept()


@pytest.mark.parametrize("use", WHY)
def test_the_panel_says_why_and_keeps_it(client, admin_user, sets, redis, use):
    client.force_login(admin_user)
    url = f"/config/sets/{sets[use].pk}/delete/"
    page = client.get(url).content.decode()
    assert WHY[use] in page and "Delete dispatcher set</button>" not in page
    response = client.post(url, {"reason": "tidy up"}, follow=True)
    assert f"Could not delete {sets[use]}: {WHY[use]}" in response.content.decode()
    assert all_kept()


@pytest.mark.parametrize("use", WHY)
def test_the_django_admin_says_why_and_keeps_it(admin_client, sets, use):
    response = admin_client.post(
        reverse("admin:dispatcher_dispatcherset_delete", args=[sets[use].pk]), {"post": "yes"}, follow=True
    )
    assert f"Could not delete {sets[use]}: {WHY[use]}" in response.content.decode()
    assert all_kept()


def test_the_django_admin_bulk_action_says_why_for_each(admin_client, sets):
    changelist = reverse("admin:dispatcher_dispatcherset_changelist")
    selected = [d.pk for d in sets.values()]
    html = admin_client.post(changelist, {"action": "delete_sets", "_selected_action": selected}, follow=True).content.decode()
    assert all(f"Could not delete {sets[use]}: {why}" in html for use, why in WHY.items())
    assert all_kept()


def test_import_replace_keeps_them_and_says_so(sets, tmp_path, capsys):
    path = tmp_path / "dispatcher.list"
    path.write_text("9 sip:127.0.0.1:5089 0 0\n")
    call_command("dispatcher_import", str(path), "--replace")
    out = capsys.readouterr().out.splitlines()
    # The file drops set 1's destination, and then nothing uses set 1: the same rule lets it go.
    assert "- set 1 sip:127.0.0.1:5081" in out and "- set 1" in out
    assert f"= set 2 kept: {WHY['rules']}" in out and f"= set 3 kept: {WHY['default']}" in out
    assert set(DispatcherSet.objects.values_list("setid", flat=True)) == {2, 3, 9}
    assert ProxySettings.load().default_set == sets["default"]


def test_import_replace_by_the_api_and_the_panel_says_so_too(client, admin_user, sets, redis):
    body = (
        client_for(admin_user)
        .generic("POST", "/api/v1/dispatcher.list?replace=1&dry_run=1", "9 sip:127.0.0.1:5089 0 0\n", content_type="text/plain")
        .json()
    )
    assert body["kept"] == [f"= set 2 kept: {WHY['rules']}", f"= set 3 kept: {WHY['default']}"]
    client.force_login(admin_user)
    html = client.post(
        "/config/import/", {"text": "9 sip:127.0.0.1:5089 0 0\n", "replace": "on", "preview": "1"}
    ).content.decode()
    assert f"= set 3 kept: {WHY['default']}" in html
    assert all_kept()


def test_an_unused_set_goes_from_the_panel_and_the_admin(client, admin_client, admin_user, db, redis):
    one, two = DispatcherSet.objects.create(setid=11), DispatcherSet.objects.create(setid=12)
    client.force_login(admin_user)
    assert "Delete dispatcher set</button>" in client.get(f"/config/sets/{one.pk}/delete/").content.decode()
    assert "Deleted dispatcher set set 11." in client.post(f"/config/sets/{one.pk}/delete/", follow=True).content.decode()
    admin_client.post(reverse("admin:dispatcher_dispatcherset_delete", args=[two.pk]), {"post": "yes"})
    assert not DispatcherSet.objects.filter(setid__in=[11, 12]).exists()
    assert StateEvent.objects.filter(subject__startswith="deleted dispatcher set").count() == 2
