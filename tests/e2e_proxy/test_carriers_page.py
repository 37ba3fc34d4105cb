"""Issue 13's Carriers acceptance in Chromium: after two carriers called through a real proxy (two_carriers.py:
a server answering 503 to some calls, another killed mid-run), a viewer's Carriers page shows each
carrier's calls, answered and answer rate as SIPp counted them."""

import pytest
from playwright.sync_api import expect

from tests.browser.chromium import log_in
from tests.e2e_proxy.two_carriers import make_two_carriers, run_two_carriers, wait_counted

pytestmark = [pytest.mark.sipp, pytest.mark.browser]

CALLS, RATE, HOLD_MS = 120, 40, 300


def test_the_carriers_page_shows_what_sipp_counted(cluster_factory, page, viewer):
    cluster = make_two_carriers(cluster_factory)
    counts, sipps = run_two_carriers(cluster, calls=CALLS, rate=RATE, hold_ms=HOLD_MS)
    wait_counted(cluster, counts)
    log_in(page, "viewer")
    page.get_by_role("link", name="Carriers").click()
    page.wait_for_url("**/carriers/")
    for name, c in counts.items():
        row = page.locator(f'tr[data-carrier="{name}"]')
        expect(row.get_by_test_id("calls")).to_have_text(str(c.calls))
        expect(row.get_by_test_id("answered")).to_have_text(str(c.answered))
        expect(row.get_by_test_id("answer-rate")).to_have_text(f"{c.answered * 100 / c.calls:.1f} %")
        expect(row.get_by_test_id("failed-5xx")).to_have_text(str(c.refused))
    expect(page.locator('tr[data-carrier="other"]').get_by_test_id("calls")).to_have_text("0")
    expect(page.get_by_test_id("carriers-partial")).to_have_count(0)
