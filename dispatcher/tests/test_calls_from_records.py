"""Active calls come from the proxies' dialog records (lb:dialogcounts:<node>): a node that keeps
them is counted from them, not from its heartbeat; a dead node's records still count (its calls
are up until a live node takes them over, in one step), so its death neither loses calls from
the count nor counts them twice."""

from pathlib import Path

import pytest

from dispatcher.models import Destination, Server, StateEvent
from dispatcher.services import import_dispatcher_list
from dispatcher.tests.panel_support import write_node
from lbcore import contract

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"


@pytest.fixture
def seed(db):
    import_dispatcher_list(SEED.read_text())
    StateEvent.objects.all().delete()
    return {s.name: s for s in Server.objects.all()}


def _records(redis, node, **by_dest):
    """What proxy.dialogs leaves in Redis: `by_dest` destination pk -> calls."""
    for did, n in by_dest.items():
        for i in range(n):
            redis.hset(
                contract.dialogs_key(node), f"{node}-{did}-{i}", contract.encode_dialog(int(did), None, 1, "f", "t", node, 1.0)
            )
        redis.hset(contract.dialog_counts_key(node), did, n)
    redis.hset(contract.dialog_counts_key(node), "~", 1.0)


def _server(as_viewer, name):
    return next(s for s in as_viewer.get("/api/v1/servers/").json()["results"] if s["name"] == name)


def test_a_node_with_records_is_counted_from_them_not_from_its_heartbeat(as_viewer, seed, redis):
    ast1 = Destination.objects.get(server=seed["ast1"], dset__setid=1)
    write_node(redis, "lb1", destinations={ast1.pk: {"active": 9}})  # a second old
    _records(redis, "lb1", **{str(ast1.pk): 4})
    assert _server(as_viewer, "ast1")["active_calls"] == 4


def test_a_dead_nodes_records_still_count_beside_the_live_nodes(as_viewer, seed, redis):
    ast1 = Destination.objects.get(server=seed["ast1"], dset__setid=1)
    ast1_set2 = Destination.objects.get(server=seed["ast1"], dset__setid=2)
    write_node(redis, "lb2", destinations={})
    _records(redis, "lb2", **{str(ast1.pk): 2})
    _records(redis, "lb1", **{str(ast1.pk): 3, str(ast1_set2.pk): 1})  # lb1: no heartbeat any more
    ast1_row = _server(as_viewer, "ast1")
    assert (ast1_row["active_calls"], ast1_row["active_unknown"], ast1_row["drained"]) == (6, None, False)


def test_a_node_with_no_calls_left_reads_0_and_drained(as_viewer, seed, redis):
    Destination.objects.filter(server=seed["ast1"]).update(admin_state="inactive")
    ast1 = Destination.objects.get(server=seed["ast1"], dset__setid=1)
    write_node(redis, "lb1", destinations={ast1.pk: {"active": 1}})  # its last heartbeat, before the BYE
    redis.hset(contract.dialog_counts_key("lb1"), "~", 1.0)  # the BYE's flush left only the stamp
    ast1_row = _server(as_viewer, "ast1")
    assert (ast1_row["active_calls"], ast1_row["drained"]) == (0, True)
