"""Issue 13's "done when", once, in the whole system (tests/e2e_system: a real Celery worker AND beat
probing and running the alert engine, `manage.py runproxy`, three SIPp servers):

Two carriers call at once: Carrier A (SIPp bound to 127.0.0.2) into set 1 (ast1..3, round-robin,
503 a failover code), Carrier B (127.0.0.3) into set 2 (ast3 alone, 503 relayed). ast3 refuses one
INVITE in five with 503 (uas_some_503.xml), so Carrier A's refused calls fail over and Carrier B's
get the 503. ast2 is SIGKILLed mid-run and started again later. Alerts go to a real webhook receiver
and a real SMTP server (tests/alert_receivers.py); HEP copies go to Debian's sngrep.

Then, as an ops engineer would check it:
1. the Calls page (Chromium) finds a failed-over call by its Call-ID: ast3 503, then the server
   that answered 200 (and the API says the same);
2. the Carriers page and API show each carrier's calls, answered and answer rate as SIPp counted them;
3. the webhook and the SMTP server each got exactly one "down" and one "up" for ast2, and no more
   after several more evaluations;
4. sngrep saved the HEP copies: the Call-IDs and methods both SIPp callers logged, no more, no fewer.
"""

import time

import pytest
from playwright.sync_api import expect

from dispatcher.alerts.tests.conftest import about, mails_about
from dispatcher.tests.api_support import client_for
from tests.alert_receivers import SmtpReceiver, WebhookReceiver
from tests.browser.chromium import log_in
from tests.e2e_proxy.hepctl import Sngrep, caller_leg, sipp_messages
from tests.e2e_proxy.test_call_lookup import failed_over_call
from tests.e2e_proxy.two_carriers import CARRIER_A, CARRIER_B, caller, sipp_counts, wait_counted

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.browser]

CALLS, RATE, HOLD_MS = 100, 40, 300  # per carrier
PANEL_URL = "http://panel.example.test:8000"
WAIT = 30.0  # bounds only: every wait ends as soon as what it awaits happens
EXTRA_EVALUATIONS = 4


@pytest.fixture(scope="module")
def receivers():
    webhook, smtp = WebhookReceiver().start(), SmtpReceiver().start()
    yield webhook, smtp
    webhook.stop()
    smtp.stop()


@pytest.fixture(scope="module")
def celery_extra_env(receivers):
    """The worker sends the alerts: through the SMTP receiver, every second (beat's schedule)."""
    _, smtp = receivers
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "PANEL_URL": PANEL_URL,
        "LBPANEL_ALERT_INTERVAL": "1",
        "DEFAULT_FROM_EMAIL": "lbpanel@example.test",
    }


@pytest.fixture
def uas_scenarios():
    return {3: "uas_some_503.xml"}


@pytest.fixture
def quiet_after(system):
    """Beat stops before the system's teardown pauses probing and waits the worker idle: no alert
    evaluation may write while the test database is truncated."""
    yield
    system.celeries.beat.stop()


@pytest.fixture
def browser_page(browser, live_server, system):
    """A Chromium page on the live server (not the `page` fixture: its `redis` flushes the Redis
    database the running worker and beat use as their broker)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _two_carriers_and_capture(system, sngrep_port):
    """Carrier A into set 1, Carrier B into set 2 (ast3 alone, 503 relayed), HEP to sngrep."""
    from dispatcher.models import DispatcherSet, ProxySettings, SourceRule
    from dispatcher.services import import_dispatcher_list, save_config

    import_dispatcher_list(f"2 sip:127.0.0.1:{system.ports.ast[3]} 0 0 duid=ast3\n")
    set1, set2 = DispatcherSet.objects.get(setid=1), DispatcherSet.objects.get(setid=2)
    set2.failover_codes = "500"
    save_config(set2)
    save_config(SourceRule(network=f"{CARRIER_A}/32", dset=set1, description="Carrier A"))
    save_config(SourceRule(network=f"{CARRIER_B}/32", dset=set2, description="Carrier B"))
    settings = ProxySettings.load()
    settings.hep_destination = f"127.0.0.1:{sngrep_port}"
    settings.hep_capture_id = 2001
    save_config(settings)
    system.wait_table(int(system.redis.get("lb:table:version")))


def _alert_settings(webhook):
    from dispatcher.alerts.models import AlertSettings

    AlertSettings.objects.update_or_create(pk=1, defaults={"webhook_url": webhook.url, "email_recipients": "ops@example.test"})


def _evaluations():
    from dispatcher.alerts.models import AlertMemory

    return AlertMemory.objects.filter(pk=1).values_list("evaluations", flat=True).first() or 0


def _wait_evaluations(n, system):
    """Until the engine (run by beat through the worker) has run `n` more times."""
    start = _evaluations()
    deadline = time.monotonic() + WAIT
    while _evaluations() < start + n:
        assert time.monotonic() < deadline, f"the engine ran {_evaluations() - start} of {n} times\n" + system.celeries.report()
        time.sleep(0.1)


@pytest.mark.usefixtures("quiet_after")
def test_three_am(system, receivers, browser_page, viewer):
    webhook, smtp = receivers
    page = browser_page
    sngrep = Sngrep(system.ports.uac(), system.tmp_path / "sngrep")
    try:
        _two_carriers_and_capture(system, sngrep.port)
        _alert_settings(webhook)
        system.wait_health({1: "up", 2: "up", 3: "up"})
        _wait_evaluations(2, system)
        ast2 = system.dests[2]
        key = f"server:{ast2.server_id}:down"
        assert not about(key, "firing")(webhook.bodies), webhook.bodies

        # --- the run: both carriers at once, ast2 killed once it has answered a few ------------
        trace = {"extra": ("-trace_shortmsg",)}
        uacs = {
            "Carrier A": caller(system, CARRIER_A, calls=CALLS, rate=RATE, hold_ms=HOLD_MS, **trace),
            "Carrier B": caller(system, CARRIER_B, calls=CALLS, rate=RATE, hold_ms=HOLD_MS, **trace),
        }
        system.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 5, "5 calls answered by ast2", deadline_s=WAIT)
        system.ast[2].kill()
        assert all(sipp.alive() for sipp in uacs.values()), "ast2 must die mid-run, with both carriers still calling"
        for sipp in uacs.values():
            sipp.wait(120)
        counts = {name: sipp_counts(sipp) for name, sipp in uacs.items()}
        report = system.report(*uacs.values())

        # --- (3) alerts: one "down" for ast2 on each channel, then back up: one "up" ---------------
        system.wait_health({2: "down"}, deadline_s=WAIT)
        [down] = about(key, "firing")(webhook.inbox.wait_for(about(key, "firing"), WAIT, f"a webhook 'down' for {key}"))
        assert down["title"] == "Server ast2 is down" and down["link"] == f"{PANEL_URL}/#server-{ast2.server_id}", down
        smtp.inbox.wait_for(mails_about("[FIRING] Server ast2 is down"), WAIT, "an e-mail 'down' for ast2")
        system.restart_uas(2)
        system.wait_health({2: "up"}, deadline_s=WAIT)
        webhook.inbox.wait_for(about(key, "resolved"), WAIT, f"a webhook 'up' for {key}")
        smtp.inbox.wait_for(mails_about("[RESOLVED] Server ast2 is up"), WAIT, "an e-mail 'up' for ast2")
        _wait_evaluations(EXTRA_EVALUATIONS, system)
        hooks, mails = webhook.bodies, smtp.messages
        assert len(about(key, "firing")(hooks)) == 1 and len(about(key, "resolved")(hooks)) == 1, hooks
        assert len(mails_about("Server ast2 is down")(mails)) == 1, mails
        assert len(mails_about("Server ast2 is up")(mails)) == 1, mails
        for n in (1, 3):  # the others stayed up throughout
            other = f"server:{system.dests[n].server_id}:down"
            assert not about(other, "firing")(hooks), hooks

        # --- (2) Carriers: the proxy's counts, the API and the page match SIPp's -------------------
        a, b = counts["Carrier A"], counts["Carrier B"]
        assert a.calls == b.calls == CALLS, report
        assert a.answered + a.refused == CALLS and b.answered + b.refused == CALLS, (a, b, report)
        assert b.refused >= CALLS // 5 and b.answered > 0, f"ast3 refuses one call in five of Carrier B: {b}"
        wait_counted(system, counts)
        api = client_for(viewer)
        body = api.get("/api/v1/carriers/").json()
        rows = {row["name"]: row for row in body["carriers"]}
        for name, c in counts.items():
            row = rows[name]
            assert (row["calls"], row["answered"], row["failures"]["5xx"]) == (c.calls, c.answered, c.refused), (name, row, c)
            assert row["answer_rate"] == pytest.approx(c.answered / c.calls), (name, row, c)
        assert rows["other"]["calls"] == 0 and not body["partial"], body
        print(f"\nSIPp: {counts}")

        log_in(page, "viewer")
        page.get_by_role("link", name="Carriers").click()
        page.wait_for_url("**/carriers/")
        for name, c in counts.items():
            row = page.locator(f'tr[data-carrier="{name}"]')
            expect(row.get_by_test_id("calls")).to_have_text(str(c.calls))
            expect(row.get_by_test_id("answered")).to_have_text(str(c.answered))
            expect(row.get_by_test_id("answer-rate")).to_have_text(f"{c.answered * 100 / c.calls:.1f} %")
            expect(row.get_by_test_id("failed-5xx")).to_have_text(str(c.refused))
        expect(page.get_by_test_id("carriers-partial")).to_have_count(0)

        # --- (1) Calls: a call ast3 refused, found by its Call-ID, with both servers and codes -----
        listed = failed_over_call(api, refused_by="ast3")
        call = api.get(f"/api/v1/calls/{listed['call_id']}/").json()
        tried = [(x["server"], x["code"]) for x in call["attempts"]]
        winner = tried[1][0]
        assert tried == [("ast3", 503), (winner, 200)] and winner in ("ast1", "ast2"), tried
        assert call["carrier"] == "Carrier A" and call["final_code"] == 200 and call["ended_by"] == "caller", call
        page.goto("/calls/")
        page.fill("#id_call_id", call["call_id"])
        page.get_by_test_id("call-search").get_by_role("button", name="Search").click()
        found = page.get_by_test_id("call-row")
        expect(found).to_have_count(1)
        expect(found.first).to_contain_text(f"ast3 (503) → {winner} (200)")
        found.first.get_by_role("link").click()
        ladder = page.get_by_test_id("ladder")
        expect(ladder).to_be_visible()
        expect(ladder.get_by_test_id("hop-code")).to_have_text(["503", "200"])
        expect(ladder.get_by_test_id("hop-reply").nth(0)).to_contain_text("ast3")
        expect(ladder.get_by_test_id("hop-reply").nth(1)).to_contain_text(winner)
        expect(ladder.get_by_test_id("hop-end")).to_contain_text("BYE by the caller")

        # --- (4) HEP: sngrep saved what both callers sent and got ----------------------------------
        sngrep.mark()
        expected = set().union(*(sipp_messages(sipp) for sipp in uacs.values()))
        assert len({call_id for call_id, _, _ in expected}) == 2 * CALLS
        assert {kind for _, _, kind in expected} >= {"INVITE", "ACK", "BYE", "SIP/2.0 200", "SIP/2.0 503"}
        assert caller_leg(sngrep.messages(), system.ports) == expected
        assert sngrep.stop() == 2 * CALLS + 1, sngrep.screen()  # sngrep's own decoder: each call and the marker
    finally:
        sngrep.kill()
