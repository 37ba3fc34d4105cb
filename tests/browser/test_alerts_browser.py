"""Configuration → Alerts in Chromium: "Send test alert" (htmx, under the CSP) shows per channel that
the real webhook receiver and SMTP server got it, and the page stays the same page."""

import pytest
from playwright.sync_api import expect

from dispatcher.alerts.models import AlertSettings
from tests.alert_receivers import SmtpReceiver, WebhookReceiver
from tests.browser.chromium import log_in, mark_page, was_not_reloaded


@pytest.fixture
def receivers(settings):
    webhook, smtp = WebhookReceiver().start(), SmtpReceiver().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    yield webhook, smtp
    webhook.stop()
    smtp.stop()


def test_send_test_alert_reports_each_channel(page, admin_user, receivers):
    webhook, smtp = receivers
    AlertSettings.objects.update_or_create(pk=1, defaults={"webhook_url": webhook.url, "email_recipients": "ops@example.test"})
    log_in(page, "admin")
    page.goto("/config/alerts/")
    mark_page(page)
    page.get_by_test_id("send-test-alert").click()
    expect(page.get_by_test_id("test-webhook")).to_contain_text("webhook delivered")
    expect(page.get_by_test_id("test-email")).to_contain_text("email delivered")
    assert was_not_reloaded(page)
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1


def test_a_broken_webhook_is_named_in_the_page(page, admin_user, receivers):
    webhook, _ = receivers
    webhook.status = 503
    AlertSettings.objects.update_or_create(pk=1, defaults={"webhook_url": webhook.url})
    log_in(page, "admin")
    page.goto("/config/alerts/")
    page.get_by_test_id("send-test-alert").click()
    expect(page.get_by_test_id("test-webhook")).to_contain_text(f"not delivered: webhook {webhook.url} answered 503")
