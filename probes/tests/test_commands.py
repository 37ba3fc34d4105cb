"""The probe management commands: a preset in one step, a round by hand."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dispatcher.models import ProbeSettings
from probes import claims

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.parametrize("preset, interval, threshold", [("aggressive", 10, 2), ("default", 15, 3), ("conservative", 30, 3)])
def test_a_preset_sets_the_seeds_timings(preset, interval, threshold, lb_redis, capsys):
    call_command("probe_preset", preset)
    settings = ProbeSettings.load()
    assert (settings.ping_interval, settings.probing_threshold) == (interval, threshold)
    assert f"every {interval}s" in capsys.readouterr().out


def test_the_tick_follows_a_preset_at_once(lb_redis):
    call_command("probe_preset", "conservative")
    assert claims.start_round_if_due(lb_redis, ProbeSettings.load().ping_interval)
    call_command("probe_preset", "aggressive")
    # 10 s have not passed since the round that just started.
    assert claims.start_round_if_due(lb_redis, ProbeSettings.load().ping_interval) is None


def test_it_refuses_an_unknown_preset(lb_redis):
    with pytest.raises(CommandError, match="aggressive"):
        call_command("probe_preset", "reckless")


def test_probe_round_probes_and_prints(lb_redis, responder, probe_settings, make_destination, capsys):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    call_command("probe_round")
    out = capsys.readouterr().out
    assert dest.uri in out and "200 OK" in out and "probed 1, good 1, 1 changes" in out
