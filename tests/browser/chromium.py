"""Headless Debian Chromium driven by Playwright, against pytest-django's live server on 127.0.0.1.

A plugin of the root conftest.py (pytest_plugins), so tests outside tests/browser drive Chromium too
(tests/e2e_proxy/test_servers_panel_maintenance.py: the panel over a SIPp cluster). The live server runs
in this process on the tests' database and Redis, so it sees what a test (or its cluster) committed.

The live server's port comes from LBPANEL_TEST_PORT_BASE (default 24000, this suite takes +900..+999).
"""

import os
import socket
import time

import pytest

CHROMIUM = os.environ.get("LBPANEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 24000) + 900


def free_port():
    for port in range(PORT_BASE, PORT_BASE + 100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {PORT_BASE}-{PORT_BASE + 99} (LBPANEL_TEST_PORT_BASE)")


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, bound to loopback on a port from our range."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(f"127.0.0.1:{free_port()}")
    yield server
    server.stop()


# Module scope, not session: Playwright's sync API runs an event loop in the main thread while it
# lives, and the proxy and prober tests that pytest-django orders after these call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test-deps installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # around it are still plain synchronous ones.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser, live_server, transactional_db, redis):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page, username):
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/")


def mark_page(page):
    """Set a flag in window: if it is still there later, the page was never reloaded."""
    page.evaluate("window.__not_reloaded = true")


def was_not_reloaded(page):
    return page.evaluate("window.__not_reloaded === true")


def wait_until(predicate, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
