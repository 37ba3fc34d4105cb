"""After a committed change, lb:table holds the new table under a higher version and lb:events says so."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from dispatcher.models import Destination, DispatcherSet, ProxySettings, SourceRule
from dispatcher.services import import_dispatcher_list, save_config, set_state
from lbcore import contract

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "dispatcher.list").read_text()


@pytest.fixture
def events(redis):
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(contract.EVENTS_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscribe confirmation

    def next_event(timeout=2.0):
        message = pubsub.get_message(timeout=timeout)
        assert message is not None, "no event on lb:events"
        return json.loads(message["data"])

    yield next_event
    pubsub.close()


def test_an_import_publishes_a_newer_table(db, redis, events, django_capture_on_commit_callbacks):
    redis.set(contract.TABLE_VERSION_KEY, 41)
    with django_capture_on_commit_callbacks(execute=True):
        import_dispatcher_list(EXAMPLE)
    assert events() == {"type": "table", "version": 42}
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert table.version == 42
    assert sorted(table.sets) == [1, 2]
    ast1 = table.sets[1].destinations[0]
    assert (ast1.uri, ast1.host, ast1.port, ast1.transport, ast1.weight, ast1.duid) == (
        "sip:127.0.0.1:5081",
        "127.0.0.1",
        5081,
        "udp",
        50,
        "ast1",
    )
    assert table.settings["default_set"] == 1


def test_nothing_is_published_before_commit(db, redis, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        import_dispatcher_list(EXAMPLE)
    assert redis.get(contract.TABLE_KEY) is None
    assert len(callbacks) == 1


def test_maintenance_reaches_the_table(db, redis, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        import_dispatcher_list(EXAMPLE)
    events()
    dest = Destination.objects.get(dset__setid=1, duid="ast3")
    with django_capture_on_commit_callbacks(execute=True):
        set_state(dest, "inactive", cause="user", reason="kernel update")
    version = events()["version"]
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert table.version == version
    states = {d.duid: d.admin_state for d in table.sets[1].destinations}
    assert states == {"ast1": "active", "ast2": "active", "ast3": "inactive"}
    assert dest.events.filter(kind="admin", old="active", new="inactive", reason="kernel update").count() == 1


def test_setting_the_same_state_publishes_nothing(db, redis, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        import_dispatcher_list(EXAMPLE)
    dest = Destination.objects.first()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        set_state(dest, "active")
    assert callbacks == []
    assert dest.events.filter(kind="admin").count() == 0


def test_source_rules_and_proxy_settings_are_published(db, redis, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        import_dispatcher_list(EXAMPLE)
        inbound = DispatcherSet.objects.get(setid=2)
        save_config(SourceRule(network="203.0.113.10", dset=inbound, description="  Carrier   A "))
        proxy = ProxySettings.load()
        proxy.fr_timer_ms = 2000
        proxy.overload_lag_ms = 150
        proxy.default_set = DispatcherSet.objects.get(setid=1)
        save_config(proxy)
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert table.source_rules == (contract.SourceRuleSpec(network="203.0.113.10/32", setid=2, carrier="Carrier A"),)
    assert table.settings["fr_timer_ms"] == 2000
    assert table.settings["overload_lag_ms"] == 150 and table.settings["retry_after_s"] == 5


def test_publish_table_command_restores_a_flushed_redis(db, redis, django_capture_on_commit_callbacks, capsys):
    with django_capture_on_commit_callbacks(execute=True):
        import_dispatcher_list(EXAMPLE)
    redis.flushdb()
    call_command("publish_table")
    assert "published table version 1" in capsys.readouterr().out
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert sum(len(s.destinations) for s in table.sets.values()) == 6
    assert redis.hlen(contract.HEALTH_KEY) == 6
