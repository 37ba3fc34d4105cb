"""Who got an account, a new password or an API token, and who revoked one, is in the audit log,
whichever way it was done: the panel, the Django admin or manage.py."""

from django.core.management import call_command
from django.urls import reverse

from dispatcher import services
from dispatcher.models import ApiToken, StateEvent


def events(prefix):
    return list(StateEvent.objects.filter(subject__startswith=prefix).order_by("id"))


def test_a_user_made_in_the_panel_is_audited_with_its_admin(client, admin_user, redis):
    client.force_login(admin_user)
    client.post("/config/users/", {"username": "carol", "password": "long-enough", "role": "operator"})
    created, role = events("created user carol") + events("updated user carol")
    assert (created.new, created.actor) == ("no role", admin_user)
    assert (role.old, role.new, role.actor) == ("no role", "operator", admin_user)


def test_a_user_made_in_the_django_admin_is_audited(admin_client, admin_user):
    admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "dave", "password1": "Long-enough-1", "password2": "Long-enough-1", "usable_password": "true"},
    )
    [event] = events("created user dave")
    assert event.actor == admin_user


def test_createsuperuser_is_audited(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Long-enough-1")
    call_command("createsuperuser", "--noinput", "--username", "root2", "--email", "root2@example.com", verbosity=0)
    [event] = events("created user root2")
    assert (event.new, event.actor) == ("superuser", None) and "manage.py" in event.reason


def test_a_password_change_in_the_django_admin_is_audited(admin_client, admin_user, viewer):
    url = reverse("admin:auth_user_password_change", args=[viewer.pk])
    response = admin_client.post(
        url, {"password1": "New-long-enough-2", "password2": "New-long-enough-2", "usable_password": "true"}
    )
    assert response.status_code == 302
    [event] = events("changed password of user viewer")
    assert event.actor == admin_user
    assert "New-long-enough-2" not in f"{event.old} {event.new} {event.reason}"


def test_a_password_set_on_the_server_is_audited(viewer):
    viewer.set_password("another-one")
    viewer.save()
    [event] = events("changed password of user viewer")
    assert event.actor is None and "manage.py" in event.reason


def test_logging_in_is_no_password_change(client, viewer, redis):
    client.post("/login/", {"username": "viewer", "password": "pw-viewer"})
    assert events("changed password") == []


def test_a_role_change_in_the_django_admin_is_audited(admin_client, admin_user, viewer):
    from django.contrib.auth.models import Group

    url = reverse("admin:auth_user_change", args=[viewer.pk])
    admin_client.post(
        url,
        {
            "username": "viewer",
            "is_active": "on",
            "groups": [Group.objects.get(name="operator").pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    [event] = events("updated user viewer")
    assert (event.old, event.new, event.actor) == ("viewer", "operator", admin_user)


def test_a_token_issued_by_the_command_is_audited(operator, capsys):
    call_command("create_api_token", "operator", "--read-only", "--allow", "10.0.0.0/8", "--expires-in-days", "30")
    key = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    token = ApiToken.objects.get()
    [event] = events("issued API token")
    assert event.subject == f"issued API token {token.prefix}… of operator"
    assert event.new.startswith("read-only, from 10.0.0.0/8, expires ") and "manage.py" in event.reason
    assert key not in f"{event.subject} {event.new}"


def test_a_token_issued_and_revoked_in_the_django_admin_is_audited(admin_client, admin_user, viewer):
    admin_client.post(
        reverse("admin:dispatcher_apitoken_add"),
        {"user": viewer.pk, "name": "grafana", "write_enabled": "on", "allowed_networks": ""},
    )
    token = ApiToken.objects.get()
    [issued] = events("issued API token")
    assert (issued.actor, issued.new) == (admin_user, "read-write, no expiry, name 'grafana'")
    admin_client.post(reverse("admin:dispatcher_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]})
    [revoked] = events("revoked API token")
    assert (revoked.actor, revoked.new) == (admin_user, "revoked")
    token.refresh_from_db()
    assert token.revoked is not None


def test_deleting_a_token_in_the_django_admin_revokes_it_once(admin_client, viewer):
    token, _key = services.issue_token(viewer)
    admin_client.post(reverse("admin:dispatcher_apitoken_delete", args=[token.pk]), {"post": "yes"})
    admin_client.post(reverse("admin:dispatcher_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()  # still there: who had which token stays on record
    assert token.revoked is not None and len(events("revoked API token")) == 1
