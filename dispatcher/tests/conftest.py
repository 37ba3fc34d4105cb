"""Fixtures of the API's tests: a client per role (each with its own token) and a small two-set table.
Role users, the panel's small cluster and Redis come from the root conftest.py."""

import pytest
from rest_framework.test import APIClient

from dispatcher.models import Destination, DispatcherSet
from dispatcher.tests.api_support import client_for


@pytest.fixture
def anonymous(db):
    return APIClient()


@pytest.fixture
def as_admin(admin_user):
    return client_for(admin_user)


@pytest.fixture
def panel_admin(client, admin_user):
    """The panel (Django's test client, session login) as an admin; `as_admin` is the API's."""
    client.force_login(admin_user)
    return client


@pytest.fixture
def as_operator(operator):
    return client_for(operator)


@pytest.fixture
def as_viewer(viewer):
    return client_for(viewer)


@pytest.fixture
def as_nobody(nobody):
    return client_for(nobody)


@pytest.fixture
def as_readonly_admin(admin_user):
    return client_for(admin_user, write=False)


@pytest.fixture
def as_readonly_operator(operator):
    return client_for(operator, write=False)


@pytest.fixture
def table(db):
    """Set 1: three destinations (ast1..3, weights 50/30/20); set 2: one. Made with the ORM: nothing is published."""
    one = DispatcherSet.objects.create(setid=1, name="outbound")
    two = DispatcherSet.objects.create(setid=2, name="inbound")
    dests = [
        Destination.objects.create(
            dset=one,
            uri=f"sip:127.0.0.1:{5081 + i}",
            duid=f"ast{i + 1}",
            weight=w,
            priority=10 - i,
            attrs=f"weight={w};duid=ast{i + 1}",
        )
        for i, w in enumerate((50, 30, 20))
    ]
    dests.append(
        Destination.objects.create(dset=two, uri="sip:127.0.0.1:5091", duid="ast1", weight=100, attrs="weight=100;duid=ast1")
    )
    return {"sets": {1: one, 2: two}, "dests": dests}
