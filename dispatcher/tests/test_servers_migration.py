"""Migration 0012 groups the rows that exist into servers, by the rules every later save uses."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("dispatcher", "0011_stateevent_before_after")]
AFTER = [("dispatcher", "0013_destination_server_required")]
SEED = [
    (1, "sip:10.0.0.11:5080", "ast1"),
    (1, "sip:10.0.0.12:5080", "ast2"),
    (1, "sip:10.0.0.13:5080", "ast3"),
    (2, "sip:10.0.0.11:5080", "ast1"),
    (2, "sip:10.0.0.12:5080", "ast2"),
    (2, "sip:10.0.0.13:5080", "ast3"),
    (3, "sip:10.0.0.13:5080;transport=tcp", "ast3"),
    (3, "sip:10.0.0.14", ""),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_groups_the_seed_rows_into_servers():
    old = migrate(BEFORE)
    DispatcherSet = old.get_model("dispatcher", "DispatcherSet")
    Destination = old.get_model("dispatcher", "Destination")
    try:
        sets = {n: DispatcherSet.objects.create(setid=n, name=f"set {n}") for n in (1, 2, 3)}
        for setid, uri, duid in SEED:
            Destination.objects.create(dset=sets[setid], uri=uri, duid=duid)
        new = migrate(AFTER)
        Server = new.get_model("dispatcher", "Server")
        grouped = {
            (s.transport, s.host, s.port): (s.name, sorted(s.destinations.values_list("dset__setid", flat=True)))
            for s in Server.objects.all()
        }
        assert grouped == {
            ("udp", "10.0.0.11", 5080): ("ast1", [1, 2]),
            ("udp", "10.0.0.12", 5080): ("ast2", [1, 2]),
            ("udp", "10.0.0.13", 5080): ("ast3", [1, 2]),
            ("tcp", "10.0.0.13", 5080): ("ast3", [3]),
            ("udp", "10.0.0.14", 5060): ("10.0.0.14:5060", [3]),
        }
        assert not new.get_model("dispatcher", "Destination").objects.filter(server=None).exists()
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
