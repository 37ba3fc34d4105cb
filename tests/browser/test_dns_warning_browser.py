"""A server named by host name whose name stops resolving, in Chromium: the warning appears on its
row with the live refresh (no reload); a phone still never scrolls sideways with it, and at a desk it
wraps instead of pushing the row's calls and buttons out of view."""

import time

import pytest
from playwright.sync_api import expect

from dispatcher.models import Destination
from dispatcher.tests.panel_support import make_set, write_node
from lbcore import contract
from tests.browser.chromium import log_in, mark_page, was_not_reloaded

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def by_name(transactional_db, redis):
    write_node(redis)
    return Destination.objects.create(
        dset=make_set(1, "outbound"), uri="sip:asterisk-floor-2.callcenter.example.test", duid="ast1"
    )


def test_the_warning_appears_with_the_live_refresh_and_fits_a_phone(page, operator, by_name, redis):
    page.set_viewport_size(PHONE)
    log_in(page, "operator")
    row = page.locator(f"#server-{by_name.server_id}")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("server-dns-warning")).to_have_count(0)
    mark_page(page)
    doc = contract.encode_dns_warning(
        "proxy-a", "sip:asterisk-floor-2.callcenter.example.test", "SERVFAIL (REFUSED)", time.time(), ["10.20.30.40:5060"]
    )
    redis.hset(contract.dns_key("proxy-a"), str(by_name.id), doc)  # as proxy-a's heartbeat writes it
    warning = row.get_by_test_id("server-dns-warning")
    expect(warning).to_contain_text("stopped resolving at", timeout=15_000)
    expect(warning).to_contain_text("(SERVFAIL (REFUSED)); using last known 10.20.30.40:5060")
    assert was_not_reloaded(page)
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    # at a desk the long line wraps under the badges: the row's other columns stay in view
    page.set_viewport_size({"width": 1366, "height": 800})
    expect(row.get_by_test_id("server-active")).to_be_in_viewport()
    expect(row.get_by_test_id("server-maintenance")).to_be_in_viewport()
