"""/metrics per server: active calls over every set and live proxy (absent, with an _unknown gauge,
while nobody can vouch for them), current CPS and drained."""

import time
from pathlib import Path

import pytest

from dispatcher.models import Destination, Server
from dispatcher.services import import_dispatcher_list
from dispatcher.tests.panel_support import write_node
from dispatcher.tests.test_metrics_health import samples
from lbcore import contract

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"


@pytest.fixture
def seed(db):
    import_dispatcher_list(SEED.read_text())
    return {s.name: s for s in Server.objects.all()}


def labels(server):
    return (("id", str(server.pk)), ("server", server.name))


def row(server, setid):
    return Destination.objects.get(server=server, dset__setid=setid)


def test_it_exports_each_servers_calls_and_cps(anonymous, seed, redis):
    ast1 = seed["ast1"]
    Destination.objects.filter(server=seed["ast2"]).update(admin_state="inactive")
    write_node(
        redis,
        "lb-a",
        destinations={
            row(ast1, 1).pk: {"active": 50, "cps": 3.5},
            row(ast1, 2).pk: {"active": 24, "cps": 1.0},
        },
    )
    found = samples(anonymous.get("/metrics"))
    assert found[("lbpanel_server_active_calls", labels(ast1))] == 74
    assert found[("lbpanel_server_active_calls_unknown", labels(ast1))] == 0
    assert found[("lbpanel_server_cps", labels(ast1))] == 4.5
    assert found[("lbpanel_server_drained", labels(ast1))] == 0
    assert found[("lbpanel_server_active_calls", labels(seed["ast2"]))] == 0
    assert found[("lbpanel_server_drained", labels(seed["ast2"]))] == 1  # in maintenance everywhere, 0 calls
    assert found[("lbpanel_server_drained", labels(seed["ast3"]))] == 0  # 0 calls, but in service


def test_an_unknown_count_is_absent_and_flagged(anonymous, seed, redis):
    ast3 = seed["ast3"]
    Destination.objects.filter(server=ast3).update(admin_state="inactive")  # else in service: known not drained
    write_node(redis, "lb-a")
    redis.set(
        contract.node_calls_key("lb-b"),
        contract.encode_node_calls("lb-b", pid=1, active={row(ast3, 2).pk: 7}, unknown={}, written=time.time() - 30),
    )
    found = samples(anonymous.get("/metrics"))
    assert ("lbpanel_server_active_calls", labels(ast3)) not in found
    assert ("lbpanel_server_drained", labels(ast3)) not in found
    assert found[("lbpanel_server_active_calls_unknown", labels(ast3))] == 1
    assert found[("lbpanel_server_active_calls", labels(seed["ast1"]))] == 0
