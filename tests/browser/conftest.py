"""The browser suite: every test here is marked `browser`; Chromium, the live server and the page come
from tests/browser/chromium.py (a plugin of the root conftest.py)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def role_groups(transactional_db):
    """Transactional tests flush every table, the groups migration 0002 made included: make them again."""
    from django.contrib.auth.models import Group

    from dispatcher.roles import ADMIN, OPERATOR, VIEWER

    for name in (VIEWER, OPERATOR, ADMIN):
        Group.objects.get_or_create(name=name)
