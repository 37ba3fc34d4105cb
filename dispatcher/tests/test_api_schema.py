"""The OpenAPI schema tells the truth: schemathesis calls every operation in-process as an admin.

Bounded: a few examples per operation, derandomized, so the suite stays well under a minute.
"""

import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance

from dispatcher import services
from dispatcher.models import Destination, DispatcherSet
from lbpanel.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# The coverage phase (boundary and negative values for every parameter) triples the run time;
# LBPANEL_SCHEMATHESIS_DEEP=1 turns it on, e.g. before a release.
schema.config.phases.coverage.enabled = os.environ.get("LBPANEL_SCHEMATHESIS_DEEP", "") == "1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def wsgi_keeps_the_test_connection():
    # Django's test client does this too: closing the connection after a request would end the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(admin_user, wsgi_keeps_the_test_connection):
    one = DispatcherSet.objects.create(setid=1, name="outbound")
    Destination.objects.create(dset=one, uri="sip:127.0.0.1:5081", duid="ast1", weight=50, attrs="weight=50;duid=ast1")
    return services.issue_token(admin_user)[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case, admin_key, redis):
    case.call_and_validate(headers={"Authorization": f"Token {admin_key}"}, checks=CHECKS)


def test_the_schema_lists_every_endpoint(client, db):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for path in (
        "/api/v1/sets/",
        "/api/v1/destinations/{id}/state/",
        "/api/v1/source-rules/",
        "/api/v1/probe-settings/",
        "/api/v1/events/",
        "/api/v1/nodes/",
        "/api/v1/stats/",
        "/api/v1/dispatcher.list",
        "/api/v1/servers/",
        "/api/v1/servers/{id}/",
        "/api/v1/servers/{id}/state/",
    ):
        assert path in paths


def test_the_docs_name_the_paths_outside_the_rest_api(client, db):
    description = client.get("/api/schema/?format=json").json()["info"]["description"]
    for path in ("POST /rpc", "GET /metrics", "GET /healthz"):
        assert path in description


def test_the_docs_use_no_cdn(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(not a.startswith(("http:", "https:", "//")) for a in assets), assets
    assert "swagger-ui" in html and "cdn" not in html.lower()
