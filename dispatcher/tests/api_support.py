"""Shared by the API tests: a client that authenticates with a fresh token (the fixtures are in conftest.py)."""

from rest_framework.test import APIClient

from dispatcher import services
from dispatcher.models import StateEvent

# An address outside LBPANEL_METRICS_ALLOWED's default, for requests that must not pass as local.
FOREIGN_ADDRESS = "192.0.2.77"


def client_for(user, *, write=True, networks="", keyword="Token"):
    token, key = services.issue_token(user, write_enabled=write, allowed_networks=networks)
    # Issuing is audited; these tokens are the tests' scaffolding, not events under test.
    StateEvent.objects.filter(subject__startswith=f"issued API token {token.prefix}").delete()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    client.key = key
    return client
