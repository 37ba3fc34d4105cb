import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from dispatcher import services
from dispatcher.models import ApiToken, StateEvent
from dispatcher.roles import role_of
from dispatcher.tests.api_support import FOREIGN_ADDRESS, client_for

URL = "/api/v1/sets/"


def test_it_accepts_token_and_bearer(viewer):
    assert client_for(viewer).get(URL).status_code == 200
    assert client_for(viewer, keyword="Bearer").get(URL).status_code == 200


def test_it_answers_401_without_credentials(anonymous):
    response = anonymous.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_it_refuses_an_unknown_key(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token lbp_not-a-key")
    response = anonymous.get(URL)
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."


def test_it_refuses_a_malformed_header(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token two words")
    assert anonymous.get(URL).status_code == 401


def test_it_refuses_a_revoked_token(viewer):
    client = client_for(viewer)
    ApiToken.objects.update(revoked=timezone.now())
    response = client.get(URL)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_it_refuses_an_inactive_users_token(viewer):
    client = client_for(viewer)
    viewer.is_active = False
    viewer.save()
    assert client.get(URL).status_code == 401


def test_it_limits_a_token_to_its_networks(viewer):
    client = client_for(viewer, networks="127.0.0.0/8")
    assert client.get(URL, REMOTE_ADDR="127.0.0.1").status_code == 200
    response = client.get(URL, REMOTE_ADDR=FOREIGN_ADDRESS)
    assert response.status_code == 401 and FOREIGN_ADDRESS in response.json()["detail"]


def test_it_refuses_a_user_without_a_role(nobody):
    assert client_for(nobody).get(URL).status_code == 403


def test_it_stores_only_a_hash_and_notes_last_use(viewer):
    client = client_for(viewer)
    token = ApiToken.objects.get()
    assert client.key not in (token.key_hash, token.prefix) and token.key_hash == ApiToken.hash_key(client.key)
    assert client.key.startswith(token.prefix)
    assert token.last_used is None
    client.get(URL)
    token.refresh_from_db()
    assert token.last_used is not None


def test_invalid_networks_are_refused(viewer):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        services.issue_token(viewer, allowed_networks="10.0.0.0/8, not-a-net")
    assert "allowed_networks" in info.value.message_dict


def test_the_command_prints_the_key_alone_on_the_last_line(operator, capsys):
    call_command("create_api_token", "operator")
    key = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    token = ApiToken.objects.get()
    assert token.key_hash == ApiToken.hash_key(key) and token.write_enabled and token.user == operator
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(URL).status_code == 200


def test_the_command_makes_read_only_and_limited_tokens(operator, capsys):
    call_command("create_api_token", "operator", "--read-only", "--name", "nagios", "--allow", "127.0.0.1", "--allow", "::1")
    token = ApiToken.objects.get()
    assert not token.write_enabled and token.name == "nagios" and token.network_list == ["127.0.0.1/32", "::1/128"]


def test_the_command_names_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user 'ghost'.*--role"):
        call_command("create_api_token", "ghost")


def test_the_command_with_a_role_creates_a_service_account(db, capsys):
    call_command("create_api_token", "ops-bot", "--role", "operator")
    key = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    token = ApiToken.objects.get()
    assert token.user.username == "ops-bot" and role_of(token.user) == "operator"
    assert not token.user.has_usable_password()
    assert StateEvent.objects.filter(subject="created user ops-bot").exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(URL).status_code == 200


def test_the_command_does_not_change_an_existing_users_role(viewer):
    with pytest.raises(CommandError, match="exists with role viewer, not admin"):
        call_command("create_api_token", "viewer", "--role", "admin")
    assert not ApiToken.objects.exists() and role_of(type(viewer).objects.get(pk=viewer.pk)) == "viewer"


def test_the_command_refuses_a_bad_user_name(db):
    with pytest.raises(CommandError, match="cannot be a user name"):
        call_command("create_api_token", "ops bot!", "--role", "viewer")


def test_the_admin_revokes_tokens(admin_user, viewer, client):
    client_for(viewer)
    client.force_login(admin_user)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    token = ApiToken.objects.get()
    url = reverse("admin:dispatcher_apitoken_changelist")
    response = client.post(url, {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked is not None


def test_the_admin_shows_a_new_key_once(admin_user, viewer, client):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:dispatcher_apitoken_add"),
        {"user": viewer.pk, "name": "cron", "write_enabled": "on", "allowed_networks": ""},
        follow=True,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    key = shown[0].rsplit(" ", 1)[-1]
    assert token.key_hash == ApiToken.hash_key(key)


def test_session_writes_need_csrf(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get(URL).status_code == 200
    response = client.post(URL, {"setid": 5}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
