"""Configuration → Alerts: admin only; fields validated where stored (a webhook is http(s)), errors on
the field; saving is audited without the webhook's secret path; "Send test alert" says per channel
whether it was delivered, through the real receivers, and lands in the audit log."""

import pytest

from dispatcher.alerts.models import AlertSettings
from dispatcher.models import StateEvent

PAGE, TEST = "/config/alerts/", "/config/alerts/test/"


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def _form(**changes):
    data = {
        "webhook_url": "",
        "email_recipients": "",
        "rules_on": ["server_down", "set_unusable", "proxy_silent", "proxy_shedding", "proxy_busy", "probes_stopped"],
        "rate_limit_per_minute": 10,
        "proxy_silent_seconds": 10,
        "shedding_quiet_seconds": 60,
        "proxy_busy_pct": 85,
        "carrier_answer_rate_min_pct": 20,
        "carrier_failure_rate_max_pct": 30,
        "carrier_min_calls": 20,
    }
    return {**data, **changes}


@pytest.mark.parametrize("role", ["viewer", "operator", "nobody"])
@pytest.mark.parametrize(("method", "path"), [("get", PAGE), ("post", PAGE), ("post", TEST)])
def test_it_refuses_anyone_but_admin(client, request, role, method, path, webhook):
    client.force_login(request.getfixturevalue(role))
    AlertSettings.objects.update_or_create(pk=1, defaults={"webhook_url": webhook.url})
    assert getattr(client, method)(path).status_code == 403
    assert not webhook.bodies


def test_it_sends_anonymous_users_to_the_login_page(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_get_on_the_test_button(as_admin):
    assert as_admin.get(TEST).status_code == 405


def test_it_shows_the_settings_and_the_rules(as_admin):
    html = as_admin.get(PAGE).content.decode()
    assert "A server goes down / comes back" in html and "No probe round for 3 × ping interval" in html
    assert 'data-testid="send-test-alert"' in html and 'hx-post="/config/alerts/test/"' in html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("webhook_url", "ftp://hooks.example.test/x", "must start with http:// or https://"),
        ("webhook_url", "file:///etc/passwd", "must start with http:// or https://"),
        ("webhook_url", "http://", "Not a valid http(s) URL"),
        ("email_recipients", "ops@example.test, not-an-address", "Not an e-mail address: not-an-address"),
        ("rate_limit_per_minute", "0", "greater than or equal to 1"),
        ("carrier_answer_rate_min_pct", "101", "less than or equal to 100"),
    ],
)
def test_bad_values_are_refused_on_their_field(as_admin, field, value, message):
    response = as_admin.post(PAGE, _form(**{field: value}))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="field-error" data-field="{field}">' in html and message in html
    assert AlertSettings.load().webhook_url == "" and not StateEvent.objects.exists()


def test_saving_is_audited_without_the_webhook_secret(as_admin, admin_user):
    url = "https://hooks.example.test/services/T000/B000/very-secret"
    response = as_admin.post(PAGE, _form(webhook_url=url, email_recipients="ops@example.test", rules_on=["server_down"]))
    assert response.status_code == 302
    config = AlertSettings.load()
    assert config.webhook_url == url and config.recipients == ["ops@example.test"]
    assert config.rules_off == ["set_unusable", "proxy_silent", "proxy_shedding", "proxy_busy", "probes_stopped", "carrier"]
    event = StateEvent.objects.get(subject="updated alert settings")
    assert event.actor == admin_user and event.kind == "config"
    assert "very-secret" not in str(event.after) + event.new and event.after["webhook_url"] == "https://hooks.example.test/…"


def test_the_test_button_reports_each_channel_delivered(as_admin, admin_user, alert_config, webhook, smtp):
    response = as_admin.post(TEST, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="test-webhook"' in html and 'data-testid="test-email"' in html and html.count("delivered") == 2
    [body] = webhook.bodies
    assert body["state"] == "test" and body["text"].startswith("[TEST] Test alert from lbpanel")
    assert body["link"] == "https://panel.example.test/config/alerts/"
    [mail] = smtp.messages
    assert mail["subject"] == "[lbpanel] [TEST] Test alert from lbpanel" and "Sent by admin" in mail["body"]
    event = StateEvent.objects.get(subject="test alert")
    assert (event.kind, event.cause, event.actor) == ("alert", "user", admin_user)
    assert "webhook: delivered; email: delivered" in event.reason and "/config/alerts/" in event.reason


def test_the_test_button_says_why_a_channel_failed(as_admin, alert_config, webhook, smtp):
    webhook.status = 500
    html = as_admin.post(TEST, HTTP_HX_REQUEST="true").content.decode()
    assert f"not delivered: webhook {webhook.url} answered 500" in html
    assert "Traceback" not in html and len(smtp.messages) == 1
    assert "answered 500" in StateEvent.objects.get(subject="test alert").reason


def test_the_test_button_without_channels_says_so(as_admin):
    html = as_admin.post(TEST, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="test-none"' in html and "No channel is configured" in html
