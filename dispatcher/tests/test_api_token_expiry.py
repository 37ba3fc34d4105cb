"""A token may carry an expiry; past it the token is refused with the time it expired."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from dispatcher.models import ApiToken
from dispatcher.tests.api_support import client_for

URL = "/api/v1/sets/"


def test_it_refuses_an_expired_token(viewer):
    client = client_for(viewer)
    ApiToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = client.get(URL)
    assert response.status_code == 401 and response.json()["detail"].startswith("This token expired at ")


def test_it_accepts_a_token_before_its_expiry(viewer):
    client = client_for(viewer)
    ApiToken.objects.update(expires=timezone.now() + timedelta(hours=1))
    assert client.get(URL).status_code == 200


def test_the_command_sets_an_expiry(operator, capsys):
    call_command("create_api_token", "operator", "--expires-in-days", "7")
    token = ApiToken.objects.get()
    assert timedelta(days=6, hours=23) < token.expires - timezone.now() <= timedelta(days=7)
    assert "expires " in capsys.readouterr().out


def test_the_command_refuses_a_nonsense_expiry(operator):
    with pytest.raises(CommandError, match="--expires-in-days must be 1 or more, got 0"):
        call_command("create_api_token", "operator", "--expires-in-days", "0")
