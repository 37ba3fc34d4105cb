"""The dashboard with destinations in several states, as docs/dashboard.png shows it.

`LBPANEL_SCREENSHOT=1 pytest tests/browser/test_dashboard_screenshot.py` writes docs/dashboard.png;
otherwise the picture goes to a temporary directory, so a test run never changes the repository.
The URIs are the seed's example servers; the panel only displays them, nothing is sent to them.
"""

import json
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
from tests.browser.conftest import log_in

DOCS = Path(__file__).resolve().parents[2] / "docs"


def demo_cluster(redis):
    agents = DispatcherSet.objects.create(setid=1, name="dialers", algorithm=Algorithm.ROUND_ROBIN)
    carriers = DispatcherSet.objects.create(setid=2, name="carrier inbound", algorithm=Algorithm.CALL_LOAD)
    spec = [
        (agents, "sip:10.0.0.11:5080", "ast1", 50, AdminState.ACTIVE, "up", 3.1, 200, 38, 2.4),
        (agents, "sip:10.0.0.12:5080", "ast2", 30, AdminState.ACTIVE, "up", 4.7, 200, 22, 1.5),
        (agents, "sip:10.0.0.13:5080", "ast3", 20, AdminState.INACTIVE, "up", 2.9, 200, 3, 0.0),
        (agents, "sip:10.0.0.14:5080", "ast4", 20, AdminState.ACTIVE, "down", None, None, 0, 0.0),
        (carriers, "sip:10.0.0.21:5080", "ast5", 100, AdminState.ACTIVE, "up", 1.8, 200, 41, 3.1),
        (carriers, "sip:10.0.0.22:5080", "ast6", 100, AdminState.ACTIVE, "suspect", 250.0, 503, 1, 0.1),
        (carriers, "sip:10.0.0.23:5080", "ast7", 100, AdminState.DISABLED, "unknown", None, None, 0, 0.0),
    ]
    live, now = {}, time.time()
    for n, (dset, uri, duid, weight, state, health, rtt, code, active, cps) in enumerate(spec):
        dest = Destination.objects.create(dset=dset, uri=uri, duid=duid, weight=weight, admin_state=state, probing=True)
        if health != "unknown":
            write_health(
                redis,
                dest.id,
                health,
                rtt_ms=rtt,
                code=code,
                since=now - 300 * (n + 1),
                reason="no reply to 3 OPTIONS" if health == "down" else "",
            )
        for i in range(30):
            sample = {"t": now - 15 * i, "rtt_ms": None if health == "down" else (rtt or 3) * (0.8 + (i % 5) / 10), "code": code}
            redis.lpush(contract.rtt_key(dest.id), json.dumps(sample))
        live[dest.id] = {"active": active, "cps": cps, "invites": active * 40, "answered": active * 31, "failovers": n}
    # Configured last week, so "For" shows the time since the last health change.
    Destination.objects.update(created=timezone.now() - timedelta(days=7))
    redis.set(contract.TABLE_VERSION_KEY, 42)
    half = {k: {**v, "active": v["active"] // 2, "cps": v["cps"] / 2} for k, v in live.items()}
    for name, dests, version in (("proxy-a", live, 42), ("proxy-b", half, 41)):
        totals = {key: sum(d[key] for d in dests.values()) for key in ("active", "invites", "answered", "failovers")}
        write_node(redis, name, destinations=dests, table_version=version, totals={**totals, "sent_503": 2, "shed": 0})


def test_dashboard_screenshot(page, admin_user, redis, tmp_path):
    demo_cluster(redis)
    log_in(page, "admin")
    expect(page.get_by_test_id("nodes")).to_be_visible()
    page.wait_for_timeout(300)  # let fonts settle; nothing is asserted on timing
    target = DOCS / "dashboard.png" if os.environ.get("LBPANEL_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
