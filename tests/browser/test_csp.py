"""Every page carries a strict Content-Security-Policy and, in Chromium, breaks none of it:
no inline script or style, no eval, including what htmx and Swagger UI do at run time."""

import pytest
from playwright.sync_api import expect

from dispatcher.tests.panel_support import write_node
from tests.browser.chromium import log_in

# Playwright's init scripts run outside the page's CSP; this one reports each violation the page
# raises, alongside Chromium's own "Refused to ..." console errors.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def violations(page):
    found = []
    page.context.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda msg: found.append(msg.text) if "Content Security Policy" in msg.text or "CSP violation" in msg.text else None,
    )
    return found


def visit(page, path):
    response = page.goto(path)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy, (path, policy)
    return response


def wait_for_live_refresh(page):
    page.evaluate("() => { window.swaps = 0; document.body.addEventListener('htmx:afterSettle', () => window.swaps++); }")
    page.wait_for_function("() => window.swaps >= 1", timeout=10_000)


def test_the_panel_pages_raise_no_violation(page, violations, admin_user, cluster, redis):
    ast1 = cluster["ast1"]
    write_node(redis, destinations={ast1.id: {"active": 2}})
    visit(page, "/login/")
    log_in(page, "admin")

    visit(page, "/")  # the Servers view
    wait_for_live_refresh(page)
    page.locator(f"#server-{ast1.server_id}").get_by_test_id("server-maintenance").click()
    expect(page.get_by_test_id("confirm")).to_have_count(1)
    page.get_by_test_id("confirm").get_by_role("link", name="Cancel").click()
    expect(page.get_by_test_id("confirm")).to_have_count(0)

    visit(page, "/sets/")
    wait_for_live_refresh(page)
    page.locator(f"#dest-{ast1.id}").get_by_test_id("maintenance").click()
    expect(page.get_by_test_id("confirm")).to_have_count(1)
    page.get_by_test_id("confirm").get_by_role("link", name="Cancel").click()
    expect(page.get_by_test_id("confirm")).to_have_count(0)

    visit(page, f"/destinations/{ast1.id}/")
    wait_for_live_refresh(page)
    for path in (
        "/audit/",
        "/config/",
        "/config/users/",
        "/config/probes/",
        "/config/proxy/",
        f"/config/destinations/{ast1.id}/",
    ):
        visit(page, path)
    visit(page, "/config/import/")
    page.fill("#id_text", "1 sip:127.0.0.1:25090 0 0 duid=ast9")
    page.get_by_role("button", name="Preview changes (dry run)").click()
    expect(page.get_by_test_id("preview")).to_be_visible()
    assert violations == []


def test_the_api_docs_raise_no_violation(page, violations, viewer, redis):
    log_in(page, "viewer")
    visit(page, "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("lbpanel API")
    expect(page.locator(".opblock").first).to_be_visible()
    assert violations == []


def test_the_django_admin_raises_no_violation(page, violations, admin_user, cluster, redis):
    visit(page, "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    visit(page, "/admin/dispatcher/destination/")
    visit(page, f"/admin/dispatcher/destination/{cluster['ast1'].id}/change/")
    assert violations == []
