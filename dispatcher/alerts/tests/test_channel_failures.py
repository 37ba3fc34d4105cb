"""A channel that fails logs one line, keeps its notices and sends them on a later evaluation; the
other channel is not held up. A channel turned off drops its notices, saying why."""

import logging

from dispatcher.alerts import engine
from dispatcher.alerts.models import AlertDelivery
from dispatcher.alerts.tests.conftest import about
from dispatcher.tests.panel_support import write_health
from lbcore import contract


def test_a_failing_webhook_is_retried_and_email_goes_on(healthy, alert_config, webhook, smtp, redis, caplog):
    key = f"server:{healthy['ast1'].server_id}:down"
    webhook.status = 500
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    with caplog.at_level(logging.WARNING, logger="dispatcher.alerts.engine"):
        engine.evaluate()
    assert not webhook.bodies and len(smtp.messages) == 2  # the server and its set
    [line] = [r.getMessage() for r in caplog.records]
    assert f"webhook {webhook.url} answered 500" in line and "retried next evaluation" in line
    pending = AlertDelivery.objects.filter(channel="webhook", state="pending")
    assert pending.count() == 2 and all(d.attempts == 1 and "answered 500" in d.error for d in pending)

    webhook.status = 200
    engine.evaluate()
    engine.evaluate()
    assert len(about(key, "firing")(webhook.bodies)) == 1 and len(smtp.messages) == 2


def test_an_unreachable_webhook_says_where(healthy, alert_config, webhook, redis, caplog):
    webhook.stop()
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    with caplog.at_level(logging.WARNING, logger="dispatcher.alerts.engine"):
        engine.evaluate()
    assert any(f"webhook {webhook.url} not reached" in r.getMessage() for r in caplog.records)
    assert AlertDelivery.objects.filter(channel="webhook", state="pending").count() == 2


def test_a_channel_turned_off_drops_what_it_had_not_sent(healthy, alert_config, webhook, smtp, redis):
    webhook.status = 500
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    engine.evaluate()
    alert_config.webhook_url = ""
    alert_config.save()
    engine.evaluate()
    dropped = AlertDelivery.objects.filter(channel="webhook")
    assert {d.state for d in dropped} == {"dropped"} and all("turned off" in d.error for d in dropped)
