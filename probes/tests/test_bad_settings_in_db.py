"""A value saved before validation existed (or written past it) must not freeze health:
the round probes with the default and says why, and never writes what was injected."""

import pytest

from dispatcher.models import Destination, ProbeSettings

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_round_with_a_bad_ping_method_in_the_database_still_updates_health(probes, responder, probe_settings, make_destination):
    ProbeSettings.objects.filter(pk=1).update(ping_method="<i>PM</i>")
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    summary = probes.round()
    assert summary["probed"] == 1
    assert probes.health(dest.pk)["state"] == "up"
    assert {r.method for r in responder.received} == {"OPTIONS"}
    assert "ping_method '<i>PM</i>' is not a SIP method name" in probes.worker.log()


def test_a_round_with_crlf_in_ping_from_sends_the_default_from(probes, responder, probe_settings, make_destination):
    ProbeSettings.objects.filter(pk=1).update(ping_from="sip:lb@localhost\r\nP-Asserted-Identity: <sip:boss@example.com>")
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    probes.round()
    assert probes.health(dest.pk)["state"] == "up"
    assert [r.from_ for r in responder.received] and all("dispatcher@localhost" in r.from_ for r in responder.received)


def test_a_destination_with_crlf_in_its_uri_is_skipped_and_the_others_probed(probes, responder, probe_settings, make_destination):
    good = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    bad = make_destination(f"sip:ast2@127.0.0.1:{responder.port}")
    Destination.objects.filter(pk=bad.pk).update(
        uri=f"sip:ast2@127.0.0.1:{responder.port};x=1\r\nP-Asserted-Identity: sip:boss;x=1"
    )
    summary = probes.round()
    assert summary["probed"] == 1
    assert probes.health(good.pk)["state"] == "up"
    assert probes.health(bad.pk) is None
    assert all("ast2" not in r.uri for r in responder.received)
