"""What a round probes: admin-inactive (maintenance) destinations too, never disabled
ones; with probing_mode 0 only those with the P flag, and any that are down."""

import pytest

from dispatcher.models import StateEvent
from probes.tests.responder import SILENT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_it_goes_on_probing_a_destination_in_maintenance(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}", admin_state="inactive")
    probes.round()
    assert probes.health(dest.pk)["state"] == "up"
    responder.answer(SILENT)
    for _ in range(3):
        probes.round()
    assert probes.health(dest.pk)["state"] == "down"
    assert StateEvent.objects.filter(destination=dest, kind="health", new="down").count() == 1


def test_it_never_probes_a_disabled_destination(probes, responder, probe_settings, make_destination):
    make_destination(f"sip:off@127.0.0.1:{responder.port}", admin_state="disabled", probing=True)
    on = make_destination(f"sip:on@127.0.0.1:{responder.port}")
    assert probes.round()["probed"] == 1
    assert [r.uri for r in responder.received] == [on.uri]


def test_mode_0_probes_only_flagged_destinations_and_down_ones(probes, responder, probe_settings, make_destination):
    probe_settings.probing_mode = 0
    probe_settings.save()
    flagged = make_destination(f"sip:p@127.0.0.1:{responder.port}", probing=True)
    make_destination(f"sip:plain@127.0.0.1:{responder.ports[1]}", probing=False)
    down = make_destination(f"sip:down@127.0.0.1:{responder.ports[2]}", probing=False, health="down")
    assert probes.round()["probed"] == 2
    assert sorted(r.uri for r in responder.received) == sorted([flagged.uri, down.uri])
    assert probes.health(down.pk)["state"] == "up"
