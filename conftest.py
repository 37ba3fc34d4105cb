"""Fixtures shared by every test: a real Redis database of the tests' own, role users (with fast password
hashing), and the panel's small cluster (tests/e2e_proxy has its own `cluster`: SIPp around a proxy)."""

import os

import pytest
import redis as redis_lib

# Chromium, the live server and a page, for tests/browser and for the panel over a SIPp cluster in tests/e2e_proxy;
# `dnsmasq`, a real DNS server on loopback.
pytest_plugins = ["tests.browser.chromium", "tests.dnsmasq"]

# Tests never touch the Redis database a running lbpanel uses (db 0 by default).
TEST_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def _test_redis_url(settings):
    settings.REDIS_URL = TEST_REDIS_URL


@pytest.fixture
def redis_url():
    return TEST_REDIS_URL


@pytest.fixture
def redis(redis_url):
    """A real Redis, emptied before the test."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def _user(django_user_model, name, group):
    from django.contrib.auth.models import Group

    from dispatcher.models import StateEvent

    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw-" + name)
    # Making an account is audited (dispatcher.signals); these are the tests' scaffolding, not events under test.
    StateEvent.objects.filter(subject=f"created user {name}").delete()
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Role users are made per test; PBKDF2 would spend a quarter second on each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(db, django_user_model):
    """In the admin group and a superuser, so pytest-django's admin_client (Django admin) works too."""
    user = _user(django_user_model, "admin", "admin")
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def operator(db, django_user_model):
    return _user(django_user_model, "operator", "operator")


@pytest.fixture
def viewer(db, django_user_model):
    return _user(django_user_model, "viewer", "viewer")


@pytest.fixture
def nobody(db, django_user_model):
    """Logged in, but in no role group."""
    return _user(django_user_model, "nobody", None)


@pytest.fixture
def cluster(db):
    """Set 1 with ast1 (active), ast2 (in maintenance), ast3 (disabled): for the panel's and the browser's tests."""
    from dispatcher.choices import AdminState
    from dispatcher.tests.panel_support import make_destination, make_set

    dset = make_set()
    return {
        "set": dset,
        "ast1": make_destination(dset, 1),
        "ast2": make_destination(dset, 2, admin_state=AdminState.INACTIVE),
        "ast3": make_destination(dset, 3, admin_state=AdminState.DISABLED),
    }


# pytest-timeout's SIGALRM can be lost: raised inside an asyncio task it fails that task, not the test, and
# a test waiting on it forever held CI for 90 minutes with nothing to show. This watchdog is the backstop:
# a test still running WATCHDOG_S after it began gets every thread's stack printed, and the run ends.
WATCHDOG_S = 420


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import threading

    if item.config.getoption("usepdb", False):  # someone at a breakpoint is not a hang
        yield
        return
    timer = threading.Timer(WATCHDOG_S, _hung, args=(item,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _hung(item):
    import faulthandler
    import sys

    capman = item.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n\n{item.nodeid} still running after {WATCHDOG_S} s: every thread's stack, then exit\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(3)
