"""The alert tests' receivers: a real HTTP server and a real SMTP server (aiosmtpd) on loopback, and
alert settings that send to both. Redis, the database and role users come from the root conftest."""

import time

import pytest

from dispatcher.alerts.models import AlertSettings
from dispatcher.tests.panel_support import write_health, write_node
from lbcore import contract
from tests.alert_receivers import SmtpReceiver, WebhookReceiver

PANEL_URL = "https://panel.example.test"


@pytest.fixture
def webhook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp():
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def mail_settings(settings, smtp):
    """Django's real SMTP backend (pytest-django swaps in locmem) pointed at the loopback server."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.PANEL_URL = PANEL_URL
    return settings


@pytest.fixture
def alert_config(db, webhook, mail_settings):
    config = AlertSettings.load()
    config.webhook_url = webhook.url
    config.email_recipients = "ops@example.test"
    config.save()
    return config


@pytest.fixture
def healthy(cluster, redis):
    """The root conftest's cluster with ast1 up, a proxy reporting and a probe round just finished."""
    write_health(redis, cluster["ast1"].id, contract.UP)
    write_node(redis, "proxy-a")
    redis.set(contract.LAST_ROUND_KEY, time.time())
    return cluster


def about(key, state):
    """Webhook bodies (single messages and digests alike) about `key` in `state`."""

    def match(items):
        found = []
        for body in items:
            for alert in body.get("alerts", [body]):
                if alert.get("key") == key and alert.get("state") == state:
                    found.append(alert)
        return found

    return match


def mails_about(title):
    return lambda items: [m for m in items if title in m["subject"] or title in m["body"]]
