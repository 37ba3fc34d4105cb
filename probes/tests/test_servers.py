"""Health is a server's: a server (one SIP endpoint: transport, resolved host, port) listed in
several sets gets one OPTIONS per round, and every row of it takes that one outcome, so its
rows go up and down together; each row keeps its own StateEvents."""

import pytest

from dispatcher.models import Destination, DispatcherSet, StateEvent
from probes.tests.responder import SILENT

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def probes_sent(responder, port=None):
    """Distinct probes (Call-IDs) received, to `port` when given (UDP retransmissions count once)."""
    return len({r.call_id for r in responder.received if port is None or r.uri.endswith(f":{port}")})


@pytest.fixture
def ast1(responder, make_destination):
    """ast1 in set 1 (outbound) and in set 2 (inbound), as the seed's dispatcher.list has it;
    ast2 in set 1 only."""
    outbound = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    inbound_set = DispatcherSet.objects.create(setid=2, name="inbound")
    inbound = Destination.objects.create(dset=inbound_set, uri=f"sip:127.0.0.1:{responder.port}")
    ast2 = make_destination(f"sip:ast2@127.0.0.1:{responder.ports[1]}")
    return outbound, inbound, ast2


def states(probes, *dests):
    return [(probes.health(d.pk) or {}).get("state") for d in dests]


def test_a_server_in_two_sets_gets_one_probe_per_round(probes, responder, probe_settings, ast1):
    outbound, inbound, ast2 = ast1
    for n in range(1, 4):
        summary = probes.round()
        assert (summary["servers"], summary["probed"]) == (2, 3)
        assert probes_sent(responder, responder.port) == n
        assert probes_sent(responder, responder.ports[1]) == n
    assert states(probes, outbound, inbound, ast2) == ["up", "up", "up"]


def test_its_rows_go_down_and_up_together(probes, responder, probe_settings, ast1):
    outbound, inbound, ast2 = ast1
    probes.round()
    responder.answer(SILENT, uri=outbound.uri)  # the Request-URI of ast1's one probe: its lowest id's
    for _ in range(probe_settings.probing_threshold):
        probes.round()
    assert states(probes, outbound, inbound, ast2) == ["down", "down", "up"]
    responder.answer(200, uri=outbound.uri)
    probes.round()
    assert states(probes, outbound, inbound) == ["up", "up"]
    for row in (outbound, inbound):
        history = StateEvent.objects.filter(destination=row, kind="health").order_by("id")
        assert [(e.old, e.new, e.cause) for e in history] == [
            ("unknown", "up", "probe"),
            ("up", "down", "probe"),
            ("down", "up", "probe"),
        ]
        row.refresh_from_db()
        assert row.health == "up"


def test_a_name_and_an_address_of_one_box_are_one_server(probes, responder, probe_settings, ast1):
    outbound, inbound, _ = ast1
    by_name = Destination.objects.create(dset=inbound.dset, uri=f"sip:ast1@localhost:{responder.port}")
    assert probes.round()["servers"] == 2
    assert probes_sent(responder, responder.port) == 1
    assert states(probes, outbound, inbound, by_name) == ["up", "up", "up"]


def test_probe_now_of_one_row_settles_every_row_of_its_server(probes, responder, probe_settings, ast1):
    outbound, inbound, ast2 = ast1
    probes.round()
    sent = probes_sent(responder)
    responder.answer(503, uri=outbound.uri)
    result = probes.probe_now(inbound.pk, "503 on INVITE").get(timeout=10)
    assert result["probed"] == 2 and result["server"] == f"udp:127.0.0.1:{responder.port}"
    assert probes_sent(responder) == sent + 1  # one OPTIONS, ast2 not probed
    # A suspect is settled by one probe: the 503 confirms the whole server down.
    assert states(probes, outbound, inbound, ast2) == ["down", "down", "up"]
    for row in (outbound, inbound):
        assert StateEvent.objects.filter(destination=row, kind="health", new="down", cause="probe").count() == 1
