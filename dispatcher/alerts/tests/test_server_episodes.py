"""A server that goes down is told once on each channel however many evaluations see it down, its
return once, and a second outage is a new episode, told again. Real HTTP and SMTP receivers."""

import time

import pytest

from dispatcher.alerts import engine
from dispatcher.alerts.models import AlertEpisode
from dispatcher.alerts.tests.conftest import PANEL_URL, about, mails_about
from dispatcher.models import StateEvent
from dispatcher.tests.panel_support import write_health
from lbcore import contract


def _down_then_up(redis, server_id, dest_id, evaluations=3):
    write_health(redis, dest_id, contract.DOWN, rtt_ms=None, code=None, reason="3 probes unanswered")
    for _ in range(evaluations):
        engine.evaluate()
    write_health(redis, dest_id, contract.UP)
    for _ in range(evaluations):
        engine.evaluate()


def test_one_down_and_one_up_per_channel(healthy, alert_config, webhook, smtp, redis):
    ast1 = healthy["ast1"]
    key = f"server:{ast1.server_id}:down"
    engine.evaluate()
    assert not about(key, "firing")(webhook.bodies)
    _down_then_up(redis, ast1.server_id, ast1.id)

    [down] = about(key, "firing")(webhook.bodies)
    [up] = about(key, "resolved")(webhook.bodies)
    assert down["title"] == "Server ast1 is down" and "3 probes unanswered" in down["detail"]
    assert down["link"] == f"{PANEL_URL}/#server-{ast1.server_id}"
    assert down["text"].startswith("[FIRING] Server ast1 is down") and down["link"] in down["text"]
    assert up["title"] == "Server ast1 is up"
    assert len(mails_about("[FIRING] Server ast1 is down")(smtp.messages)) == 1
    assert len(mails_about("[RESOLVED] Server ast1 is up")(smtp.messages)) == 1
    assert all(m["to"] == ["ops@example.test"] for m in smtp.messages)


def test_a_second_outage_is_told_again(healthy, alert_config, webhook, smtp, redis):
    ast1 = healthy["ast1"]
    key = f"server:{ast1.server_id}:down"
    _down_then_up(redis, ast1.server_id, ast1.id)
    _down_then_up(redis, ast1.server_id, ast1.id)
    assert len(about(key, "firing")(webhook.bodies)) == 2
    assert len(about(key, "resolved")(webhook.bodies)) == 2
    assert len(mails_about("Server ast1 is down")(smtp.messages)) == 2
    assert AlertEpisode.objects.filter(key=key).count() == 2 and not AlertEpisode.objects.filter(key=key, closed=None).exists()


def test_fired_and_resolved_land_in_the_audit_log_with_the_link(healthy, alert_config, redis):
    ast1 = healthy["ast1"]
    _down_then_up(redis, ast1.server_id, ast1.id, evaluations=1)
    events = StateEvent.objects.filter(kind="alert", subject__startswith="Server ast1").order_by("id")
    assert [(e.subject, e.old, e.new, e.cause) for e in events] == [
        ("Server ast1 is down", "", "firing", "alert"),
        ("Server ast1 is up", "firing", "resolved", "alert"),
    ]
    assert f"{PANEL_URL}/#server-{ast1.server_id}" in events[0].reason


def test_a_set_with_no_usable_server_fires(healthy, alert_config, webhook, redis):
    # ast2 is in maintenance and ast3 disabled: ast1 down leaves set 1 nothing.
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    engine.evaluate()
    [alert] = about("set:1:unusable", "firing")(webhook.bodies)
    assert alert["title"] == "Set 1 has no usable server" and alert["link"] == f"{PANEL_URL}/sets/#set-1"


def test_a_disabled_server_closes_its_episode_without_claiming_it_is_up(healthy, alert_config, webhook, redis):
    from dispatcher import services

    ast1 = healthy["ast1"]
    write_health(redis, ast1.id, contract.DOWN)
    engine.evaluate()
    services.set_server_state(ast1.server, "disabled", reason="retired")
    engine.evaluate()
    [closed] = about(f"server:{ast1.server_id}:down", "resolved")(webhook.bodies)
    assert closed["title"] == "Server ast1 is disabled"


def test_a_row_disabled_while_down_does_not_keep_its_server_down(healthy, alert_config, webhook, redis):
    """ast1 is up through set 1; its row in set 2 was disabled while down and is probed by nobody since."""
    from dispatcher.models import Destination
    from dispatcher.tests.panel_support import make_set

    ast1 = healthy["ast1"]
    stale = Destination.objects.create(dset=make_set(2, "inbound"), uri=ast1.uri, duid="ast1", admin_state="disabled")
    write_health(redis, stale.id, contract.DOWN, rtt_ms=None, code=None, reason="3 probes unanswered")
    engine.evaluate()
    assert not about(f"server:{ast1.server_id}:down", "firing")(webhook.bodies)


@pytest.mark.parametrize("state", [contract.UNKNOWN, contract.SUSPECT])
def test_an_unsettled_health_keeps_the_episode_open(healthy, alert_config, webhook, redis, state):
    ast1 = healthy["ast1"]
    write_health(redis, ast1.id, contract.DOWN)
    engine.evaluate()
    write_health(redis, ast1.id, state, since=time.time())
    engine.evaluate()
    assert not about(f"server:{ast1.server_id}:down", "resolved")(webhook.bodies)
    assert AlertEpisode.objects.filter(key=f"server:{ast1.server_id}:down", closed=None).exists()


def test_a_removed_server_ends_its_episode_saying_so(healthy, alert_config, webhook, redis):
    ast1 = healthy["ast1"]
    write_health(redis, ast1.id, contract.DOWN)
    engine.evaluate()
    server_id = ast1.server_id
    ast1.delete()  # its server, listed nowhere else, goes with it
    engine.evaluate()
    [closed] = about(f"server:{server_id}:down", "resolved")(webhook.bodies)
    assert closed["title"] == "Server ast1 was removed" and "no longer in any set" in closed["detail"]
    assert not AlertEpisode.objects.filter(closed=None, key__startswith="server:").exists()
