"""The Servers view with servers in several states, as docs/dashboard.png shows it.

`LBPANEL_SCREENSHOT=1 pytest tests/browser/test_dashboard_screenshot.py` writes docs/dashboard.png;
otherwise the picture goes to a temporary directory, so a test run never changes the repository.
The URIs are the seed's example servers; the panel only displays them, nothing is sent to them.
"""

import json
import math
import os
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from dispatcher.choices import AdminState, Algorithm
from dispatcher.models import Destination, DispatcherSet
from dispatcher.tests.panel_support import write_health, write_node
from lbcore import contract
from tests.browser.chromium import log_in

DOCS = Path(__file__).resolve().parents[2] / "docs"
A, MAINT, D = AdminState.ACTIVE, AdminState.INACTIVE, AdminState.DISABLED


def demo_cluster(redis):
    """The seed's shape, grown: ast1-ast3 in both sets, ast3 draining, ast4 down, ast5 in maintenance
    in set 1 only, ast6 disabled."""
    agents = DispatcherSet.objects.create(setid=1, name="dialers", algorithm=Algorithm.ROUND_ROBIN)
    carriers = DispatcherSet.objects.create(setid=2, name="carrier inbound", algorithm=Algorithm.CALL_LOAD)
    servers = {  # duid: (host, health, rtt, code, {set: (state, weight, active, cps)})
        "ast1": ("10.0.0.11", "up", 3.1, 200, {agents: (A, 50, 50, 2.4), carriers: (A, 100, 24, 1.1)}),
        "ast2": ("10.0.0.12", "up", 4.7, 200, {agents: (A, 30, 31, 1.5), carriers: (A, 100, 17, 0.8)}),
        "ast3": ("10.0.0.13", "up", 2.9, 200, {agents: (MAINT, 20, 0, 0.0), carriers: (MAINT, 100, 3, 0.0)}),
        "ast4": ("10.0.0.14", "down", None, None, {agents: (A, 20, 0, 0.0)}),
        "ast5": ("10.0.0.15", "suspect", 250.0, 503, {agents: (MAINT, 20, 0, 0.0), carriers: (A, 100, 6, 0.3)}),
        "ast6": ("10.0.0.16", "unknown", None, None, {carriers: (D, 100, 0, 0.0)}),
    }
    live, now = {}, time.time()
    for n, (duid, (host, health, rtt, code, rows)) in enumerate(servers.items()):
        for dset, (state, weight, active, cps) in rows.items():
            dest = Destination.objects.create(
                dset=dset, uri=f"sip:{host}:5080", duid=duid, weight=weight, admin_state=state, probing=True
            )
            if health != "unknown":
                reason = "no reply to 3 OPTIONS" if health == "down" else ""
                write_health(redis, dest.id, health, rtt_ms=rtt, code=code, since=now - 300 * (n + 1), reason=reason)
            live[dest.id] = {"active": active, "cps": cps, "cps_1m": cps * 0.9, "invites": active * 40, "answered": active * 31}
            for i in range(contract.CALLS_SAMPLES):  # an hour of history, every 10 s, oldest last
                t = round(now - 10 * i, 1)
                past = round((active or 12) * (0.75 + 0.25 * math.sin(i / 40 + n)))  # ast3 drained from ~12
                if i < 30 or health == "down" and i < 120:  # the last 5 minutes as now; ast4 down for 20
                    past = active
                if state != D:
                    redis.rpush(contract.calls_key(dest.id), json.dumps({"t": t, "active": past}))
    # Configured last week, so "For" shows the time since the last health change.
    Destination.objects.update(created=timezone.now() - timedelta(days=7))
    redis.set(contract.TABLE_VERSION_KEY, 42)
    redis.set(contract.LAST_ROUND_KEY, now)
    halves = {k: {**v, "cps": v["cps"] / 2, "cps_1m": v["cps_1m"] / 2} for k, v in live.items()}
    half = {k: {**v, "active": v["active"] // 2} for k, v in halves.items()}
    rest = {k: {**v, "active": v["active"] - half[k]["active"]} for k, v in halves.items()}
    for name, dests, cpu in (("proxy-a", half, 0.41), ("proxy-b", rest, 0.72)):
        totals = {key: sum(d.get(key, 0) for d in dests.values()) for key in ("active", "invites", "answered")}
        write_node(
            redis,
            name,
            destinations=dests,
            table_version=42,
            totals={**totals, "failovers": 3, "sent_503": 2, "shed": 0},
            load={"cpu": cpu, "delay_ms": 2.4, "window_s": 10.0},
        )


def test_dashboard_screenshot(page, admin_user, redis, tmp_path):
    demo_cluster(redis)
    page.set_viewport_size({"width": 1366, "height": 700})
    log_in(page, "admin")
    expect(page.get_by_test_id("servers").locator("tr.server")).to_have_count(6)
    expect(page.get_by_test_id("sparkline")).to_have_count(5)
    page.wait_for_timeout(300)  # let fonts settle; nothing is asserted on timing
    target = DOCS / "dashboard.png" if os.environ.get("LBPANEL_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
