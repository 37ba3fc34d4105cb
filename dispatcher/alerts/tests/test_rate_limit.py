"""At most rate_limit_per_minute messages per channel; what the limit holds back goes out in one
digest as soon as the limit allows, so nothing is lost."""

import time

from dispatcher.alerts import engine
from dispatcher.alerts.models import AlertDelivery, AlertMessage
from dispatcher.tests.panel_support import make_destination, make_set, write_health, write_node
from lbcore import contract


def _keys(bodies, state):
    return sorted(a["key"] for b in bodies for a in b.get("alerts", [b]) if a["state"] == state)


def test_excess_is_summarised_in_the_next_message_never_lost(db, redis, alert_config, webhook, smtp):
    alert_config.rate_limit_per_minute = 2
    alert_config.save()
    dset = make_set()
    dests = [make_destination(dset, n) for n in range(1, 6)]
    write_node(redis)
    now = time.time()
    redis.set(contract.LAST_ROUND_KEY, now)
    for d in dests:
        write_health(redis, d.id, contract.DOWN)
    engine.evaluate(now)  # 5 servers + the set: 6 notices
    engine.evaluate(now + 1)
    bodies = webhook.bodies
    assert len(bodies) == 2 and len(smtp.messages) == 2
    assert "alerts" not in bodies[0] and bodies[1]["state"] == "digest" and bodies[1]["count"] == 5
    assert "5 alerts held back by the rate limit (2 messages a minute)" in bodies[1]["text"]
    expected = sorted([f"server:{d.server_id}:down" for d in dests] + ["set:1:unusable"])
    assert _keys(bodies, "firing") == expected
    assert "5 alerts held back" in smtp.messages[1]["subject"]

    for d in dests:
        write_health(redis, d.id, contract.UP)
    engine.evaluate(now + 2)  # the minute's two messages are spent: all six wait
    assert len(webhook.bodies) == 2
    assert AlertDelivery.objects.filter(channel="webhook", state="pending").count() == 6
    engine.evaluate(now + 62)
    bodies = webhook.bodies[2:]
    assert len(bodies) == 2 and _keys(bodies, "resolved") == expected
    assert AlertMessage.objects.filter(channel="webhook").count() == 4
    assert not AlertDelivery.objects.filter(state="pending").exists()
