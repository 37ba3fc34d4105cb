"""The other rules: a proxy stops reporting, a proxy sheds load, probe rounds stop, the engine cannot
read Redis, a rule that breaks. Judged through the engine, delivered to the real webhook receiver."""

import time

import pytest

from dispatcher.alerts import engine, registry
from dispatcher.alerts.models import AlertEpisode
from dispatcher.alerts.tests.conftest import about
from dispatcher.models import ProbeSettings
from dispatcher.tests.panel_support import write_health, write_node
from lbcore import contract


def test_a_proxy_that_stops_reporting_fires_and_its_return_resolves(healthy, alert_config, webhook, redis):
    now = time.time()
    engine.evaluate(now)
    write_node(redis, "proxy-a", heartbeat=now - 30)
    engine.evaluate(now)
    [alert] = about("proxy:proxy-a:silent", "firing")(webhook.bodies)
    assert alert["title"] == "Proxy proxy-a stopped reporting" and "30 s ago" in alert["detail"]
    redis.delete(contract.node_key("proxy-a"))  # its key expired too: still silent, not told twice
    engine.evaluate(now + 5)
    write_node(redis, "proxy-a", heartbeat=now + 10)
    engine.evaluate(now + 10)
    assert len(about("proxy:proxy-a:silent", "firing")(webhook.bodies)) == 1
    assert len(about("proxy:proxy-a:silent", "resolved")(webhook.bodies)) == 1


def _shed(redis, n):
    write_node(redis, "proxy-a", totals={"active": 0, "invites": 100, "answered": 50, "failovers": 0, "sent_503": n, "shed": n})


def test_a_proxy_that_starts_shedding_fires_once_and_ends_after_a_quiet_spell(healthy, alert_config, webhook, redis):
    alert_config.shedding_quiet_seconds = 60
    alert_config.save()
    now = time.time()
    _shed(redis, 7)
    engine.evaluate(now)  # first sight: a baseline, not a rise
    assert not about("proxy:proxy-a:shedding", "firing")(webhook.bodies)
    _shed(redis, 12)
    engine.evaluate(now + 5)
    [alert] = about("proxy:proxy-a:shedding", "firing")(webhook.bodies)
    assert "answered 5 new INVITEs 503" in alert["detail"]
    _shed(redis, 20)
    engine.evaluate(now + 10)
    engine.evaluate(now + 40)  # quiet, but not for long enough
    assert not about("proxy:proxy-a:shedding", "resolved")(webhook.bodies)
    engine.evaluate(now + 71)
    assert len(about("proxy:proxy-a:shedding", "firing")(webhook.bodies)) == 1
    assert len(about("proxy:proxy-a:shedding", "resolved")(webhook.bodies)) == 1


def _load(redis, cpu, heartbeat=None):
    write_node(redis, "proxy-a", heartbeat=heartbeat, load={"cpu": cpu, "delay_ms": 3.0, "window_s": 10.0})


def test_a_proxy_at_its_cpu_threshold_fires_and_ends_well_under_it(healthy, alert_config, webhook, redis):
    alert_config.proxy_busy_pct = 80
    alert_config.save()
    now = time.time()
    _load(redis, 0.79)
    engine.evaluate(now)
    assert not about("proxy:proxy-a:busy", "firing")(webhook.bodies)
    _load(redis, 0.83)
    engine.evaluate(now + 5)
    [alert] = about("proxy:proxy-a:busy", "firing")(webhook.bodies)
    assert alert["title"] == "Proxy proxy-a is at its CPU limit"
    assert "83 % of its CPU core" in alert["detail"] and "LBPANEL_PROXY_PROCESSES" in alert["detail"]
    _load(redis, 0.75)  # under the threshold, not well under: no flapping
    engine.evaluate(now + 10)
    assert not about("proxy:proxy-a:busy", "resolved")(webhook.bodies)
    _load(redis, 0.5, heartbeat=time.time() - 30)  # a stale figure says nothing: still open
    engine.evaluate(now + 15)
    assert not about("proxy:proxy-a:busy", "resolved")(webhook.bodies)
    _load(redis, 0.6)
    engine.evaluate(now + 20)
    assert len(about("proxy:proxy-a:busy", "firing")(webhook.bodies)) == 1
    [ended] = about("proxy:proxy-a:busy", "resolved")(webhook.bodies)
    assert "60 %" in ended["detail"]


def test_a_busy_reader_in_front_of_an_idle_worker_fires_and_names_the_reader(healthy, alert_config, webhook, redis):
    # --steering reader: the worker has headroom, but every datagram from callers waits for the reader
    alert_config.proxy_busy_pct = 80
    alert_config.save()
    now = time.time()

    def load(cpu, reader):
        write_node(redis, "proxy-a", load={"cpu": cpu, "delay_ms": 3.0, "window_s": 10.0, "reader_cpu": reader})

    load(0.3, 0.79)
    engine.evaluate(now)
    assert not about("proxy:proxy-a:busy", "firing")(webhook.bodies)
    load(0.3, 0.91)
    engine.evaluate(now + 5)
    [alert] = about("proxy:proxy-a:busy", "firing")(webhook.bodies)
    assert alert["title"] == "Proxy proxy-a's reader is at its CPU limit"
    assert "used 91 % of its CPU core" in alert["detail"] and "the worker itself 30 %" in alert["detail"]
    assert "--steering bpf" in alert["detail"]
    load(0.3, 0.75)  # the reader under the threshold, not well under: still open
    engine.evaluate(now + 10)
    assert not about("proxy:proxy-a:busy", "resolved")(webhook.bodies)
    load(0.3, None)  # unknown reader: judged on the worker alone, which has headroom
    engine.evaluate(now + 15)
    [ended] = about("proxy:proxy-a:busy", "resolved")(webhook.bodies)
    assert "30 %" in ended["detail"]


def test_no_probe_round_for_three_intervals_fires(healthy, alert_config, webhook, redis):
    ProbeSettings.objects.update_or_create(pk=1, defaults={"ping_interval": 10})
    now = time.time()
    redis.set(contract.LAST_ROUND_KEY, now - 29)
    engine.evaluate(now)
    assert not about("probes:rounds", "firing")(webhook.bodies)
    redis.set(contract.LAST_ROUND_KEY, now - 31)
    engine.evaluate(now)
    [alert] = about("probes:rounds", "firing")(webhook.bodies)
    assert "31 s ago (one is due every 10 s)" in alert["detail"] and alert["link"].endswith("/config/probes/")
    redis.set(contract.LAST_ROUND_KEY, now)
    engine.evaluate(now)
    assert len(about("probes:rounds", "resolved")(webhook.bodies)) == 1


def test_paused_probing_is_not_an_alert(healthy, alert_config, webhook, redis):
    redis.set(contract.LAST_ROUND_KEY, time.time() - 3600)
    redis.set(contract.PING_ACTIVE_KEY, "0")
    engine.evaluate()
    assert not about("probes:rounds", "firing")(webhook.bodies)


def test_an_engine_that_cannot_read_redis_says_so_and_calls_nothing_over(healthy, alert_config, webhook, redis, settings):
    ast1 = healthy["ast1"]
    write_health(redis, ast1.id, contract.DOWN)
    engine.evaluate()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    engine.evaluate()
    [alert] = about("engine:redis", "firing")(webhook.bodies)
    assert alert["title"] == "Alert engine cannot read Redis" and "not judged" in alert["detail"]
    assert AlertEpisode.objects.filter(key=f"server:{ast1.server_id}:down", closed=None).exists()
    assert not about("proxy:proxy-a:silent", "firing")(webhook.bodies)  # blind is not "every proxy died"


def test_a_rule_that_breaks_is_itself_an_alert_and_the_others_still_run(healthy, alert_config, webhook, redis, monkeypatch):
    def broken(snap, config):
        raise KeyError("totals")

    monkeypatch.setattr(registry, "RULES", [registry.Rule("broken", "broken", broken), *registry.RULES])
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    engine.evaluate()
    [alert] = about("engine:rule:broken", "firing")(webhook.bodies)
    assert alert["detail"] == "KeyError: 'totals'"
    assert about(f"server:{healthy['ast1'].server_id}:down", "firing")(webhook.bodies)


def test_a_rule_turned_off_does_not_run(healthy, alert_config, webhook, redis):
    alert_config.rules_off = ["server_down"]
    alert_config.save()
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    engine.evaluate()
    assert not about(f"server:{healthy['ast1'].server_id}:down", "firing")(webhook.bodies)
    assert about("set:1:unusable", "firing")(webhook.bodies)


@pytest.mark.parametrize("name", ["no_such_rule", "nonsense"])
def test_only_known_rules_can_be_turned_off(alert_config, name):
    from django.core.exceptions import ValidationError

    alert_config.rules_off = [name]
    with pytest.raises(ValidationError) as exc:
        alert_config.full_clean()
    assert "rules_off" in exc.value.message_dict


def test_a_rule_whose_query_fails_does_not_abort_the_evaluation(healthy, alert_config, webhook, redis, monkeypatch):
    from django.db import connection

    def bad_sql(snap, config):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM dispatcher_alertsettings")
        return []

    monkeypatch.setattr(registry, "RULES", [registry.Rule("bad_sql", "bad sql", bad_sql), *registry.RULES])
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    engine.evaluate()
    assert about("engine:rule:bad_sql", "firing")(webhook.bodies)
    assert about(f"server:{healthy['ast1'].server_id}:down", "firing")(webhook.bodies)


def test_a_rule_registered_by_its_dotted_path_runs_and_a_wrong_path_is_an_alert(
    healthy, alert_config, webhook, redis, monkeypatch
):
    on_path = registry.Rule("by_path", "by path", "dispatcher.alerts.rules.server_down")
    wrong = registry.Rule("wrong", "wrong", "dispatcher.no_such_module.findings")
    monkeypatch.setattr(registry, "RULES", [on_path, wrong])
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    engine.evaluate()
    assert about(f"server:{healthy['ast1'].server_id}:down", "firing")(webhook.bodies)
    [alert] = about("engine:rule:wrong", "firing")(webhook.bodies)
    assert "ImportError" in alert["detail"] or "ModuleNotFoundError" in alert["detail"]
