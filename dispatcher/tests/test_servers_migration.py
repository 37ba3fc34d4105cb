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


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_0020_makes_server_names_unique_renaming_the_newer_duplicates(capsys):
    from datetime import UTC, datetime

    from django.db import IntegrityError, transaction

    old = migrate([("dispatcher", "0020_alert_delivery_status")])
    DispatcherSet = old.get_model("dispatcher", "DispatcherSet")
    Destination = old.get_model("dispatcher", "Destination")
    Server = old.get_model("dispatcher", "Server")
    try:
        one, two = (DispatcherSet.objects.create(setid=n) for n in (1, 2))
        made = datetime(2026, 1, 1, tzinfo=UTC)
        # The real ast4; the same DUID over TCP, as 0012 grouped it; and server 3, PATCHed to "AST4" later.
        ast4 = Server.objects.create(transport="udp", host="10.0.0.14", port=5080, name="ast4")
        tcp = Server.objects.create(transport="tcp", host="10.0.0.14", port=5080, name="ast4")
        ast3 = Server.objects.create(transport="udp", host="10.0.0.13", port=5080, name="AST4", name_edited=True)
        Server.objects.filter(pk__in=[ast4.pk, tcp.pk]).update(updated=made)
        Server.objects.filter(pk=ast3.pk).update(updated=made.replace(month=6))
        Destination.objects.create(dset=one, server=ast4, uri="sip:10.0.0.14:5080", duid="ast4")
        Destination.objects.create(dset=two, server=tcp, uri="sip:10.0.0.14:5080;transport=tcp", duid="ast4")
        Destination.objects.create(dset=one, server=ast3, uri="sip:10.0.0.13:5080", duid="ast3")
        new = migrate([("dispatcher", "0021_server_name_unique")])
        Server = new.get_model("dispatcher", "Server")
        StateEvent = new.get_model("dispatcher", "StateEvent")
        names = {s.pk: (s.name, s.name_edited) for s in Server.objects.all()}
        assert names == {ast4.pk: ("ast4", False), tcp.pk: ("10.0.0.14:5080", False), ast3.pk: ("ast3", False)}
        events = {e.old + " → " + e.new: (e.subject, e.cause, e.kind, e.reason) for e in StateEvent.objects.all()}
        reason = "Server names are unique now, whatever the case: udp 10.0.0.14:5080 has had the name 'ast4' longer."
        assert events == {
            "ast4 → 10.0.0.14:5080": ("renamed server 10.0.0.14:5080", "upgrade", "config", reason),
            "AST4 → ast3": ("renamed server 10.0.0.13:5080", "upgrade", "config", reason),
        }
        printed = capsys.readouterr().out
        assert "server udp 10.0.0.13:5080 renamed from 'AST4' to 'ast3'" in printed
        assert "server tcp 10.0.0.14:5080 renamed from 'ast4' to '10.0.0.14:5080'" in printed
        with pytest.raises(IntegrityError), transaction.atomic():
            Server.objects.create(transport="udp", host="10.0.0.15", port=5080, name="Ast4")
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
