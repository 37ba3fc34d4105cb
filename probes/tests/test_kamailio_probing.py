"""Kamailio's probing, against a real UDP responder: ds_probing_mode 2 and 3, the no-ping flag (32),
a destination's ping_from and socket attributes, every 2xx alive, and a set's own ping reply codes."""

import pytest

from dispatcher.models import Destination, DispatcherSet
from lbcore import contract
from probes.tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _mode(settings, mode):
    settings.probing_mode = mode
    settings.save()


def test_mode_2_probes_flagged_destinations_only_while_inactive(probes, responder, probe_settings, make_destination):
    _mode(probe_settings, contract.PROBE_INACTIVE)
    maintenance = make_destination(f"sip:m@127.0.0.1:{responder.port}", probing=True, admin_state="inactive")
    down = make_destination(f"sip:d@127.0.0.1:{responder.ports[1]}", probing=True, health="down")
    make_destination(f"sip:active@127.0.0.1:{responder.ports[2]}", probing=True)
    make_destination(f"sip:noflag@127.0.0.1:{responder.ports[3]}", probing=False, admin_state="inactive")
    assert probes.round()["probed"] == 2
    assert sorted(r.uri for r in responder.received) == sorted([maintenance.uri, down.uri])


def test_mode_3_probes_flagged_destinations_continually(probes, responder, probe_settings, make_destination):
    _mode(probe_settings, contract.PROBE_ONLYFLAGGED)
    flagged = make_destination(f"sip:p@127.0.0.1:{responder.port}", probing=True)
    make_destination(f"sip:plain@127.0.0.1:{responder.ports[1]}", probing=False)
    for _ in range(3):
        probes.round()
    assert [r.uri for r in responder.received] == [flagged.uri] * 3  # P stays: probed every round
    assert probes.health(flagged.pk)["state"] == "up"


def test_a_no_ping_destination_is_never_probed_even_in_mode_1(probes, responder, probe_settings, make_destination):
    make_destination(f"sip:quiet@127.0.0.1:{responder.port}", extra_flags=contract.FLAG_NOPING)
    nodns = make_destination(f"sip:nodns@127.0.0.1:{responder.ports[1]}", extra_flags=contract.FLAG_NODNSARES)
    assert probes.round()["probed"] == 1
    assert [r.uri for r in responder.received] == [nodns.uri]


def test_ping_from_is_the_from_of_that_destinations_probe(probes, responder, probe_settings, make_destination):
    own = make_destination(f"sip:own@127.0.0.1:{responder.port}", attrs="duid=a;ping_from=sip:pinger@127.0.0.1")
    plain = make_destination(f"sip:plain@127.0.0.1:{responder.ports[1]}")
    probes.round()
    froms = {r.uri: r.from_ for r in responder.received}
    assert froms[own.uri].startswith("<sip:pinger@127.0.0.1>")
    assert froms[plain.uri].startswith(f"<{probe_settings.ping_from}>")


def test_socket_is_the_address_the_probe_leaves_from(probes, responder, probe_settings, make_destination):
    port = free_port()
    dest = make_destination(f"sip:s@127.0.0.1:{responder.port}", attrs=f"socket=udp:127.0.0.1:{port}")
    probes.round()
    assert [r.source for r in responder.received] == [f"127.0.0.1:{port}"]
    assert probes.health(dest.pk)["state"] == "up"  # the reply came back to that socket


def test_a_socket_that_cannot_be_bound_is_a_failed_probe_that_says_why(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:s@127.0.0.1:{responder.port}", attrs=f"socket=udp:127.0.0.1:{responder.ports[1]}")
    probes.round()
    health = probes.health(dest.pk)
    assert not responder.received and health["code"] is None and "cannot send from socket udp:127.0.0.1:" in health["reason"]


def test_every_2xx_is_alive_as_in_kamailio(probes, responder, probe_settings, make_destination):
    dest = make_destination(f"sip:a@127.0.0.1:{responder.port}")
    responder.answer(202)
    for _ in range(3):
        probes.round()
    assert (probes.health(dest.pk)["state"], probes.health(dest.pk)["code"]) == ("up", 202)


def test_a_sets_ping_reply_codes_count_for_its_destinations_only(probes, responder, probe_settings):
    lenient = DispatcherSet.objects.create(setid=1, ping_reply_codes="code=404")
    strict = DispatcherSet.objects.create(setid=2)
    ok = Destination.objects.create(dset=lenient, uri=f"sip:a@127.0.0.1:{responder.port}")
    bad = Destination.objects.create(dset=strict, uri=f"sip:b@127.0.0.1:{responder.ports[1]}")
    responder.answer(404)
    for _ in range(3):
        probes.round()
    assert probes.health(ok.pk)["state"] == "up" and probes.health(bad.pk)["state"] == "down"
