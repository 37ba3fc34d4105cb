"""SIP capture in Configuration → Proxy, in a real browser: a HEP destination without a port is
refused next to its field with what to type instead; a good one is saved and shown on the overview."""

from playwright.sync_api import expect

from dispatcher.models import ProxySettings
from tests.browser.chromium import log_in


def test_admin_sets_the_hep_destination_and_is_told_what_is_wrong(page, admin_user, cluster, redis):
    log_in(page, "admin")
    page.goto("/config/proxy/")
    page.fill("#id_hep_destination", "127.0.0.1")
    page.get_by_role("button", name="Save").click()
    error = page.locator('.field-error[data-field="hep_destination"]')
    expect(error).to_contain_text("the port is missing")
    expect(error).to_contain_text("HOST:PORT")
    assert ProxySettings.load().hep_destination == ""

    page.fill("#id_hep_destination", "127.0.0.1:9060")
    page.fill("#id_hep_capture_id", "42")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/config/")
    expect(page.locator("dd", has_text="127.0.0.1:9060")).to_contain_text("capture id 42")
    proxy = ProxySettings.load()
    assert (proxy.hep_destination, proxy.hep_capture_id) == ("127.0.0.1:9060", 42)
