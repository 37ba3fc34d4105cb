"""The panel in a real browser: maintenance from the dashboard, roles, and live updates without a reload."""

import re

from playwright.sync_api import expect

from dispatcher.models import Destination
from dispatcher.tests.panel_support import write_health, write_node
from tests.browser.chromium import log_in, mark_page, was_not_reloaded


def row(page, dest):
    return page.locator(f"#dest-{dest.id}")


def open_sets(page, username):
    """Log in, then open the per-set board (the landing page is the Servers view)."""
    log_in(page, username)
    page.goto("/sets/")


def test_operator_puts_a_destination_into_maintenance(page, operator, cluster, redis):
    ast1 = cluster["ast1"]
    write_node(redis, destinations={ast1.id: {"active": 4, "cps": 0.5}})
    open_sets(page, "operator")
    expect(page.get_by_test_id("role")).to_have_text("operator")
    mark_page(page)
    expect(row(page, ast1).get_by_test_id("flags")).to_have_text("A")

    row(page, ast1).get_by_test_id("maintenance").click()
    dialog = page.get_by_test_id("confirm")
    expect(dialog).to_contain_text("Put into maintenance ast1?")
    expect(dialog.get_by_test_id("confirm-active")).to_have_text("4")
    dialog.locator("#id_reason").fill("kernel update")
    dialog.get_by_test_id("confirm-button").click()

    expect(page.get_by_test_id("confirm")).to_have_count(0)
    expect(row(page, ast1).get_by_test_id("flags")).to_have_text("I")
    expect(row(page, ast1).get_by_test_id("admin-badge")).to_have_text("Maintenance")
    expect(row(page, ast1).get_by_test_id("draining")).to_be_visible()
    assert was_not_reloaded(page)
    assert Destination.objects.get(pk=ast1.pk).admin_state == "inactive"

    # Calls finish: the row counts down to "drained" by itself.
    write_node(redis, destinations={ast1.id: {"active": 0}})
    expect(row(page, ast1).get_by_test_id("drained")).to_have_text("drained — safe to restart")
    assert was_not_reloaded(page)

    page.get_by_role("link", name="Audit log").click()
    first = page.get_by_test_id("events").locator("tbody tr").first
    expect(first).to_contain_text("ast1")
    expect(first).to_contain_text("active → inactive")
    expect(first).to_contain_text("operator")
    expect(first).to_contain_text("kernel update")


def test_operator_returns_a_server_to_service(page, operator, cluster, redis):
    ast2 = cluster["ast2"]
    open_sets(page, "operator")
    mark_page(page)
    row(page, ast2).get_by_test_id("return").click()  # asks first, as Maintenance and Disable do
    page.get_by_test_id("confirm").get_by_test_id("confirm-button").click()
    expect(row(page, ast2).get_by_test_id("flags")).to_have_text("A")
    assert was_not_reloaded(page)


def test_disable_asks_for_a_reason_in_the_dialog(page, operator, cluster, redis):
    ast1 = cluster["ast1"]
    open_sets(page, "operator")
    row(page, ast1).get_by_test_id("disable").click()
    dialog = page.get_by_test_id("confirm")
    dialog.locator("#id_reason").evaluate("el => el.removeAttribute('required')")
    dialog.get_by_test_id("confirm-button").click()
    expect(page.get_by_test_id("confirm")).to_contain_text("Say why this server is disabled.")
    page.get_by_test_id("confirm").locator("#id_reason").fill("disk failed")
    page.get_by_test_id("confirm").get_by_test_id("confirm-button").click()
    expect(row(page, ast1).get_by_test_id("flags")).to_have_text("D")


def test_viewer_sees_no_maintenance_button(page, viewer, cluster, redis):
    open_sets(page, "viewer")
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    expect(row(page, cluster["ast1"]).get_by_test_id("flags")).to_have_text("A")
    expect(page.get_by_test_id("maintenance")).to_have_count(0)
    expect(page.get_by_test_id("return")).to_have_count(0)
    expect(page.get_by_test_id("disable")).to_have_count(0)


def test_dashboard_follows_a_probe_changing_health_in_redis(page, viewer, cluster, redis):
    ast1 = cluster["ast1"]
    write_node(redis)
    write_health(redis, ast1.id, "up")
    open_sets(page, "viewer")
    mark_page(page)
    expect(row(page, ast1).get_by_test_id("health-badge")).to_have_text("Up")

    # What the prober writes when ast1 stops answering.
    write_health(redis, ast1.id, "down", rtt_ms=None, code=None, reason="timeout")
    expect(row(page, ast1).get_by_test_id("health-badge")).to_have_text("Down")
    expect(row(page, ast1).get_by_test_id("flags")).to_have_text("I")
    expect(row(page, ast1).get_by_test_id("health-badge")).to_have_class(re.compile(r"\bred\b"))
    assert was_not_reloaded(page)


def test_updated_turns_red_when_no_proxy_reports(page, viewer, cluster, redis):
    write_node(redis)
    open_sets(page, "viewer")
    updated = page.get_by_test_id("updated")
    expect(updated).to_have_text(re.compile(r"updated \ds ago"))
    expect(updated).not_to_have_class(re.compile("stale"))
    redis.delete("lb:node:proxy-a")  # the proxy dies: its key expires
    expect(page.get_by_test_id("no-proxy")).to_have_text(re.compile("no proxy reporting"))
    expect(page.get_by_test_id("updated")).to_have_class(re.compile("stale"))


def test_cancel_closes_the_confirmation_and_changes_nothing(page, operator, cluster, redis):
    ast1 = cluster["ast1"]
    open_sets(page, "operator")
    row(page, ast1).get_by_test_id("maintenance").click()
    page.get_by_test_id("confirm").get_by_role("link", name="Cancel").click()
    expect(page.get_by_test_id("confirm")).to_have_count(0)
    row(page, ast1).get_by_test_id("maintenance").click()
    expect(page.get_by_test_id("confirm")).to_have_count(1)  # Escape before the dialog arrives closes nothing
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("confirm")).to_have_count(0)
    assert Destination.objects.get(pk=ast1.pk).admin_state == "active"
    assert page.url.endswith("/")


def test_keyboard_focus_survives_the_live_refresh(page, operator, cluster, redis):
    ast1 = cluster["ast1"]
    open_sets(page, "operator")
    button = row(page, ast1).get_by_test_id("maintenance")
    button.focus()
    page.evaluate("() => { window.swaps = 0; document.body.addEventListener('htmx:afterSettle', () => window.swaps++); }")
    page.wait_for_function("() => window.swaps >= 2", timeout=10_000)  # two refreshes of the live area
    focused = page.evaluate(
        "() => [document.activeElement.dataset.testid, document.activeElement.closest('tr') && document.activeElement.closest('tr').id]"
    )
    assert focused == ["maintenance", f"dest-{ast1.id}"]
