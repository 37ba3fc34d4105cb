"""Kamailio's flag bits (dispatch.h): 16 is DS_NODNSARES_DST (skip DNS), 32 is DS_NOPING_DST.
Both round-trip exactly between dispatcher.list, the model and JSON-RPC; N is printed for 32 only."""

import json

import pytest

from dispatcher import services
from dispatcher.models import Destination, ProbeSettings
from lbcore import contract, rules

LIST = "1 sip:127.0.0.1:5081 32 0 duid=noping\n1 sip:127.0.0.1:5082 16 0 duid=nodns\n1 sip:127.0.0.1:5083 40 0 duid=both\n"


def _flags_by_uri(client):
    body = {"jsonrpc": "2.0", "method": "dispatcher.list", "id": 1}
    result = client.post("/rpc", json.dumps(body), content_type="application/json").json()["result"]
    return {t["DEST"]["URI"]: t["DEST"]["FLAGS"] for t in result["RECORDS"][0]["SET"]["TARGETS"]}


@pytest.fixture
def imported(db, redis):
    settings = ProbeSettings.load()
    settings.probing_mode = contract.PROBE_FLAGGED
    settings.save()
    services.import_dispatcher_list(LIST)
    return {d.duid: d for d in Destination.objects.all()}


def test_no_ping_is_32_and_16_is_not_no_ping():
    assert contract.FLAG_NOPING == 32 and contract.FLAG_NODNSARES == 16


def test_flags_round_trip_through_the_model_and_the_export(imported):
    assert {duid: d.flags for duid, d in imported.items()} == {"noping": 32, "nodns": 16, "both": 40}
    exported = [line.split()[:3] for line in services.export_dispatcher_list().splitlines() if line and not line.startswith("#")]
    assert sorted(exported) == [
        ["1", "sip:127.0.0.1:5081", "32"],
        ["1", "sip:127.0.0.1:5082", "16"],
        ["1", "sip:127.0.0.1:5083", "40"],
    ]


def test_rpc_prints_n_for_no_ping_and_x_for_skip_dns(imported, as_viewer):
    # 40 = P + no-ping: Kamailio prints AP from the bit; our P means "the next round probes it", which
    # a no-ping row never is, so it reads AN (differs on purpose).
    assert _flags_by_uri(as_viewer) == {"sip:127.0.0.1:5081": "AN", "sip:127.0.0.1:5082": "AX", "sip:127.0.0.1:5083": "AN"}


@pytest.mark.parametrize(
    "mode", [contract.PROBE_FLAGGED, contract.PROBE_ALL, contract.PROBE_INACTIVE, contract.PROBE_ONLYFLAGGED]
)
def test_a_no_ping_destination_is_never_probed(mode):
    assert not rules.probed("active", True, mode, "down", contract.FLAG_NOPING)
    assert not rules.probed("inactive", True, mode, "down", contract.FLAG_NOPING)
    assert rules.probed("active", True, mode, "down", contract.FLAG_NODNSARES)
