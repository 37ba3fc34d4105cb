"""The Servers view in Chromium: at a desk (1366 px) and on a phone (390 px), server maintenance
through the dialog reaching every set's row, a viewer without buttons, focus kept across refreshes.

`LBPANEL_SCREENSHOT=1` keeps the pictures in docs/ (servers-1366.png, servers-390.png); otherwise they
go to a temporary directory, so a test run never changes the repository.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dispatcher.models import Destination
from dispatcher.tests.panel_support import make_destination, make_set, write_node
from tests.browser.chromium import log_in, mark_page, was_not_reloaded

DOCS = Path(__file__).resolve().parents[2] / "docs"
DESK, PHONE = {"width": 1366, "height": 800}, {"width": 390, "height": 844}


@pytest.fixture
def seed(transactional_db, redis):
    """The seed's shape: ast1..ast3 in set 1 (outbound) and set 2 (inbound); ast1 carries 50 + 24 calls."""
    out, inb = make_set(1, "outbound"), make_set(2, "inbound")
    rows = {(s.setid, n): make_destination(s, n) for s in (out, inb) for n in (1, 2, 3)}
    calls = {(1, 1): 50, (2, 1): 24, (1, 2): 31, (2, 2): 9, (1, 3): 0, (2, 3): 2}
    write_node(redis, destinations={rows[k].id: {"active": n, "cps": n / 20, "cps_1m": n / 25} for k, n in calls.items()})
    return {"rows": rows, **{f"ast{n}": rows[(1, n)].server for n in (1, 2, 3)}}


def server(page, srv):
    return page.locator(f"#server-{srv.id}")


def no_sideways_scroll(page):
    return page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")


def shot(page, name, tmp_path):
    target = DOCS / name if os.environ.get("LBPANEL_SCREENSHOT") == "1" else tmp_path / name
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_servers_view_at_a_desk(page, operator, seed, tmp_path):
    page.set_viewport_size(DESK)
    log_in(page, "operator")
    expect(page.get_by_test_id("servers").locator("tr.server")).to_have_count(3)
    ast1 = server(page, seed["ast1"])
    expect(ast1.get_by_test_id("server-active")).to_have_text("74")
    expect(ast1.get_by_test_id("set-1")).to_contain_text("50")
    expect(ast1.get_by_test_id("set-2")).to_contain_text("24")
    for locator in (ast1.get_by_test_id("server-active"), ast1.get_by_test_id("server-maintenance")):
        expect(locator).to_be_in_viewport()
    assert no_sideways_scroll(page)
    shot(page, "servers-1366.png", tmp_path)


@pytest.mark.parametrize("path", ["/", "/sets/"])
def test_a_phone_never_scrolls_sideways(page, operator, seed, tmp_path, path):
    page.set_viewport_size(PHONE)
    log_in(page, "operator")
    page.goto(path)
    expect(page.locator("#live")).to_be_visible()
    assert no_sideways_scroll(page)
    if path == "/":
        ast1 = server(page, seed["ast1"])
        for testid in ("server-name", "server-state", "server-active", "server-maintenance"):
            expect(ast1.get_by_test_id(testid)).to_be_in_viewport(ratio=1)
        button = ast1.get_by_test_id("server-maintenance").bounding_box()
        assert button["height"] >= 44 and button["x"] + button["width"] <= PHONE["width"]  # a tap target
        shot(page, "servers-390.png", tmp_path)
    else:
        row = page.locator(f"#dest-{seed['rows'][(1, 1)].id}")
        row.scroll_into_view_if_needed()
        for testid in ("active", "maintenance", "admin-badge"):
            expect(row.get_by_test_id(testid)).to_be_in_viewport(ratio=1)


def test_maintenance_on_a_server_through_the_dialog_changes_every_set(page, operator, seed):
    log_in(page, "operator")
    mark_page(page)
    ast1 = server(page, seed["ast1"])
    ast1.get_by_test_id("server-maintenance").click()
    dialog = page.get_by_test_id("confirm")
    expect(dialog).to_contain_text("Put into maintenance ast1?")
    expect(dialog.get_by_test_id("confirm-active")).to_have_text("74")
    expect(dialog.get_by_test_id("confirm-split")).to_contain_text("set 1 · outbound: 50 calls")
    expect(dialog.get_by_test_id("confirm-split")).to_contain_text("set 2 · inbound: 24 calls")
    dialog.locator("#id_reason").fill("kernel update")
    dialog.get_by_test_id("confirm-button").click()

    expect(page.get_by_test_id("confirm")).to_have_count(0)
    expect(ast1.get_by_test_id("server-state")).to_have_text("Maintenance")
    expect(ast1.get_by_test_id("server-draining")).to_have_text("draining — 74 to go")
    expect(ast1.get_by_test_id("server-return")).to_be_visible()
    assert was_not_reloaded(page)
    assert set(Destination.objects.filter(server=seed["ast1"]).values_list("admin_state", flat=True)) == {"inactive"}

    page.get_by_role("link", name="Sets").click()
    for setid in (1, 2):
        expect(page.locator(f"#dest-{seed['rows'][(setid, 1)].id}").get_by_test_id("flags")).to_have_text("I")


def test_a_server_counts_down_to_drained_by_itself(page, operator, seed, redis):
    rows = seed["rows"]
    Destination.objects.filter(server=seed["ast3"]).update(admin_state="inactive")
    log_in(page, "operator")
    mark_page(page)
    ast3 = server(page, seed["ast3"])
    expect(ast3.get_by_test_id("server-draining")).to_have_text("draining — 2 to go")  # set 2 still has 2
    write_node(redis, destinations={rows[(1, 3)].id: {"active": 0}, rows[(2, 3)].id: {"active": 0}})
    expect(ast3.get_by_test_id("server-drained")).to_have_text("drained — safe to restart")
    assert was_not_reloaded(page)


def test_a_viewer_sees_no_button(page, viewer, seed):
    log_in(page, "viewer")
    expect(server(page, seed["ast1"]).get_by_test_id("server-active")).to_have_text("74")
    for testid in ("server-maintenance", "server-return", "server-disable"):
        expect(page.get_by_test_id(testid)).to_have_count(0)


def test_keyboard_focus_survives_the_live_refresh(page, operator, seed):
    log_in(page, "operator")
    server(page, seed["ast2"]).get_by_test_id("server-maintenance").focus()
    page.evaluate("() => { window.swaps = 0; document.body.addEventListener('htmx:afterSettle', () => window.swaps++); }")
    page.wait_for_function("() => window.swaps >= 2", timeout=10_000)
    focused = page.evaluate("() => [document.activeElement.dataset.testid, document.activeElement.closest('tr').id]")
    assert focused == ["server-maintenance", f"server-{seed['ast2'].id}"]
