"""PANEL_URL and LBPANEL_ALERT_INTERVAL fail fast on a value lbpanel does not understand; beat
schedules the alert task at that interval."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from lbpanel.env import alert_interval, panel_url


def test_panel_url_is_http_or_https_without_the_trailing_slash(monkeypatch):
    monkeypatch.setenv("PANEL_URL", "https://lbpanel.example.test/")
    assert panel_url() == "https://lbpanel.example.test"
    monkeypatch.setenv("PANEL_URL", "lbpanel.example.test")
    with pytest.raises(ImproperlyConfigured, match="PANEL_URL='lbpanel.example.test' must start with http:// or https://"):
        panel_url()


@pytest.mark.parametrize("value", ["0", "301", "soon"])
def test_the_alert_interval_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("LBPANEL_ALERT_INTERVAL", value)
    with pytest.raises(ImproperlyConfigured, match="LBPANEL_ALERT_INTERVAL"):
        alert_interval()


def test_beat_schedules_the_alert_task():
    from lbpanel.celery import app

    entry = app.conf.beat_schedule["alerts"]
    assert entry["task"] == "alerts.evaluate" and entry["schedule"] == 5.0
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery included
    assert "alerts.evaluate" in app.tasks and "probes.tick" in app.tasks
