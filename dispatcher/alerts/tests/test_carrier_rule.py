"""The carrier rule through the engine: one notice when a carrier's recent answer rate drops below
its threshold, one when it recovers, and one when it goes too quiet to judge."""

from dispatcher.alerts import engine
from dispatcher.alerts.tests.conftest import about
from dispatcher.tests.carrier_support import figures, two_carriers, write_carriers


def _carrier_a(redis, calls, answered):
    write_carriers(
        redis,
        "lb-a",
        {"Carrier A": figures(calls, answered, recent={"calls": calls, "answered": answered, "failed": calls - answered})},
    )


def test_a_carrier_alert_fires_once_and_recovers_once(alert_config, webhook, redis):
    two_carriers()
    _carrier_a(redis, 40, 2)  # 5 % answered, threshold 20 %
    engine.evaluate()
    engine.evaluate()
    firing = about("carrier:Carrier A", "firing")(webhook.bodies)
    assert len(firing) == 1, webhook.bodies
    assert "Carrier A" in firing[0]["text"] and firing[0]["link"].endswith("/carriers/#carrier-carrier-a")
    _carrier_a(redis, 40, 39)
    engine.evaluate()
    engine.evaluate()
    assert len(about("carrier:Carrier A", "resolved")(webhook.bodies)) == 1


def test_a_firing_carrier_that_goes_quiet_is_resolved_saying_why(alert_config, webhook, redis):
    two_carriers()
    _carrier_a(redis, 40, 2)
    engine.evaluate()
    _carrier_a(redis, 3, 0)  # under carrier_min_calls (20): not judged any more
    engine.evaluate()
    resolved = about("carrier:Carrier A", "resolved")(webhook.bodies)
    assert len(resolved) == 1 and "too few calls" in resolved[0]["text"]
