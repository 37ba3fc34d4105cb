"""Alerting that fails is seen where people look, not only in the worker's log: each channel's last
success, last failure with its reason and failures in a row are recorded on every attempt, shown as a
red banner on every panel page and per channel on Configuration → Alerts, exported on /metrics, and
reported (without a 503) by /healthz. A success clears it; a new target starts as never tried."""

import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from dispatcher.alerts import engine
from dispatcher.alerts.models import AlertChannelStatus, AlertSettings
from dispatcher.alerts.services import save_alert_settings
from dispatcher.tests.panel_support import write_health
from dispatcher.tests.test_metrics_health import samples
from lbcore import contract

PAGE = "/config/alerts/"
BANNER = 'data-testid="alerts-not-delivered"'


def _status(channel):
    return AlertChannelStatus.objects.filter(channel=channel).first()


def _down(healthy, redis):
    write_health(redis, healthy["ast1"].id, contract.DOWN)


def _at(epoch):
    return datetime.fromtimestamp(epoch, UTC)


def _hhmm(epoch):
    return timezone.localtime(_at(epoch)).strftime("%H:%M")


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_a_closed_port_is_recorded_with_its_reason_and_email_goes_on(healthy, alert_config, webhook, smtp, redis):
    webhook.stop()  # nothing listens on its port any more
    _down(healthy, redis)
    t0 = float(int(time.time()))
    engine.evaluate(now=t0)
    row = _status("webhook")
    assert row.consecutive_failures == 1 and row.failures_total == 1
    assert row.last_error == f"connection refused to 127.0.0.1:{webhook.port}"
    assert row.last_failure == row.failing_since == _at(t0) and row.last_success is None
    assert "secret-token" not in row.last_error  # the URL's path is a chat webhook's key: never on every page

    engine.evaluate(now=t0 + 5)
    row = _status("webhook")
    assert (row.consecutive_failures, row.failures_total) == (2, 2)
    assert row.failing_since == _at(t0) and row.last_failure == _at(t0 + 5)
    mail = _status("email")
    assert mail.last_success == _at(t0) and mail.consecutive_failures == 0 and len(smtp.messages) == 2


def test_a_refused_recipient_is_recorded_as_the_smtp_reply(healthy, alert_config, smtp, redis):
    smtp.refuse_recipients = "550 5.1.1 no such user"
    _down(healthy, redis)
    engine.evaluate()
    row = _status("email")
    assert row.consecutive_failures == 1 and not smtp.messages
    assert row.last_error == "SMTP 550 5.1.1 no such user (ops@example.test)"


def test_an_smtp_server_that_is_away_is_recorded(healthy, alert_config, smtp, redis):
    smtp.stop()
    _down(healthy, redis)
    engine.evaluate()
    assert _status("email").last_error == f"connection refused to 127.0.0.1:{smtp.port}"


def test_a_webhook_answering_garbage_is_a_recorded_failure_not_a_crash(healthy, alert_config, smtp, redis):
    """http.client's BadStatusLine is no OSError: it used to end the evaluation with a traceback."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_garbage():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HELLO\r\n\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        AlertSettings.objects.filter(pk=1).update(webhook_url=f"http://127.0.0.1:{port}/hook")
        _down(healthy, redis)
        engine.evaluate()
    finally:
        listener.close()
    assert _status("webhook").last_error == f"127.0.0.1:{port} did not answer HTTP (BadStatusLine)"
    assert _status("email").last_success is not None and len(smtp.messages) == 2


def test_the_banner_shows_on_every_page_and_a_success_clears_it(healthy, alert_config, webhook, redis, viewer_client):
    webhook.status = 500
    _down(healthy, redis)
    t0 = float(int(time.time()))
    engine.evaluate(now=t0)
    engine.evaluate(now=t0 + 5)
    said = f"webhook failed 2 times since {_hhmm(t0)}: 127.0.0.1:{webhook.port} answered HTTP 500 Internal Server Error"
    for page in ("/calls/", "/audit/", "/carriers/", "/", "/sets/"):
        html = viewer_client.get(page).content.decode()
        assert BANNER in html and "Alerts are not being delivered" in html and said in html, page
        assert "secret-token" not in html
    # the Servers and Sets pages' live fragments (every 2 s) carry it too
    for page in ("/", "/sets/"):
        assert said in viewer_client.get(page, HTTP_HX_REQUEST="true").content.decode()

    webhook.status = 200
    engine.evaluate(now=t0 + 10)
    row = _status("webhook")
    assert row.consecutive_failures == 0 and row.last_success == _at(t0 + 10) and row.failures_total == 2
    assert "500" in row.last_error  # kept for the record; the banner is about the latest attempt
    for page in ("/calls/", "/"):
        assert BANNER not in viewer_client.get(page).content.decode()


def test_the_banner_links_admins_to_the_alert_settings(healthy, alert_config, webhook, redis, admin_client):
    webhook.stop()
    _down(healthy, redis)
    engine.evaluate()
    html = admin_client.get("/calls/").content.decode()
    assert BANNER in html and f'<a href="{PAGE}">Configuration → Alerts</a>' in html


def test_an_unconfigured_channel_says_nothing(healthy, alert_config, webhook, redis, viewer_client):
    webhook.stop()
    _down(healthy, redis)
    engine.evaluate()
    AlertSettings.objects.filter(pk=1).update(webhook_url="")  # its failure row stays: it is not shown
    assert BANNER not in viewer_client.get("/calls/").content.decode()


def test_the_settings_page_shows_each_channel(healthy, alert_config, webhook, redis, admin_client):
    html = admin_client.get(PAGE).content.decode()
    assert 'data-testid="delivery-webhook"' in html and 'data-testid="delivery-email"' in html
    assert html.count("never tried") == 2

    webhook.stop()
    _down(healthy, redis)
    engine.evaluate()
    html = admin_client.get(PAGE).content.decode()
    webhook_line = html.split('data-testid="delivery-webhook"')[1].split("</li>")[0]
    email_line = html.split('data-testid="delivery-email"')[1].split("</li>")[0]
    assert "failing" in webhook_line and f"connection refused to 127.0.0.1:{webhook.port}" in webhook_line
    assert "Last delivered: never" in webhook_line
    assert "delivering" in email_line and "Last delivered: 20" in email_line and "Last failed" not in email_line


def test_only_configured_channels_are_listed(db, admin_client):
    AlertSettings.objects.update_or_create(pk=1, defaults={"email_recipients": "ops@example.test"})
    html = admin_client.get(PAGE).content.decode()
    assert 'data-testid="delivery-email"' in html and 'data-testid="delivery-webhook"' not in html


def test_a_new_webhook_url_starts_as_never_tried(healthy, alert_config, webhook, redis, admin_user, viewer_client):
    webhook.stop()
    _down(healthy, redis)
    engine.evaluate()
    assert BANNER in viewer_client.get("/calls/").content.decode()
    config = AlertSettings.load()
    config.webhook_url = "https://hooks.example.test/another"
    save_alert_settings(config, actor=admin_user)
    assert _status("webhook") is None and _status("email") is not None
    assert BANNER not in viewer_client.get("/calls/").content.decode()


def test_the_test_button_records_what_it_found(alert_config, webhook, smtp, admin_client):
    webhook.status = 500
    admin_client.post("/config/alerts/test/", HTTP_HX_REQUEST="true")
    assert _status("webhook").consecutive_failures == 1 and _status("email").last_success is not None
    webhook.status = 200
    admin_client.post("/config/alerts/test/", HTTP_HX_REQUEST="true")
    assert _status("webhook").consecutive_failures == 0


def test_metrics_export_failures_and_the_last_success(healthy, alert_config, webhook, redis, client):
    webhook.status = 500
    _down(healthy, redis)
    t0 = float(int(time.time()))
    engine.evaluate(now=t0)
    engine.evaluate(now=t0 + 5)
    found = samples(client.get("/metrics"))
    hook, mail = (("channel", "webhook"),), (("channel", "email"),)
    assert found[("lbpanel_alert_delivery_failures_total", hook)] == 2
    assert found[("lbpanel_alert_delivery_consecutive_failures", hook)] == 2
    assert ("lbpanel_alert_last_delivery_success_timestamp_seconds", hook) not in found
    assert found[("lbpanel_alert_delivery_failures_total", mail)] == 0
    assert found[("lbpanel_alert_last_delivery_success_timestamp_seconds", mail)] == t0

    webhook.status = 200
    engine.evaluate(now=t0 + 10)
    found = samples(client.get("/metrics"))
    assert found[("lbpanel_alert_delivery_failures_total", hook)] == 2
    assert found[("lbpanel_alert_delivery_consecutive_failures", hook)] == 0
    assert found[("lbpanel_alert_last_delivery_success_timestamp_seconds", hook)] == t0 + 10


def test_metrics_leave_out_unconfigured_channels(db, client, redis):
    AlertSettings.objects.update_or_create(pk=1, defaults={"email_recipients": "ops@example.test"})
    found = samples(client.get("/metrics"))
    assert found[("lbpanel_alert_delivery_consecutive_failures", (("channel", "email"),))] == 0
    assert not [k for k in found if k[0].startswith("lbpanel_alert_") and ("channel", "webhook") in k[1]]


def test_healthz_reports_it_as_a_warning_not_a_503(healthy, alert_config, webhook, smtp, redis, client):
    webhook.stop()
    _down(healthy, redis)
    engine.evaluate()
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200 and body["down"] == []
    warning = body["warnings"]["alert_delivery"]
    assert warning["ok"] is False and "webhook failed 1 time since" in warning["error"]
    assert warning["channels"]["webhook"]["consecutive_failures"] == 1 and warning["channels"]["email"]["ok"] is True
    assert "refused" not in str(body) and "ops@example.test" not in str(body)  # no error text, no recipients
