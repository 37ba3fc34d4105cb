"""A destination belongs to the server its URI names: derived on every save and import, named by the
rows' DUID until a person names it, gone with its last row; dispatcher.list round-trips unchanged."""

from pathlib import Path

import pytest

from dispatcher import services
from dispatcher.choices import Cause
from dispatcher.models import Destination, DispatcherSet, Server, StateEvent
from dispatcher.services import export_dispatcher_list, import_dispatcher_list, save_config

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"


def entries(text):
    return sorted(line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


@pytest.fixture
def no_publish(monkeypatch):
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)


def servers():
    return {s.name: (s.transport, s.host, s.port, s.destinations.count()) for s in Server.objects.all()}


def test_it_groups_the_seed_list_into_three_servers(db, no_publish):
    import_dispatcher_list(SEED.read_text())
    assert servers() == {
        "ast1": ("udp", "10.0.0.11", 5080, 2),
        "ast2": ("udp", "10.0.0.12", 5080, 2),
        "ast3": ("udp", "10.0.0.13", 5080, 2),
    }
    for server in Server.objects.all():
        assert sorted(server.destinations.values_list("dset__setid", flat=True)) == [1, 2]
    assert entries(export_dispatcher_list()) == entries(SEED.read_text())


def test_it_derives_the_server_on_every_save(db):
    one = DispatcherSet.objects.create(setid=1)
    two = DispatcherSet.objects.create(setid=2)
    a = Destination.objects.create(dset=one, uri="sip:AST1.example.com:5080", duid="ast1")
    b = save_config(Destination(dset=two, uri="sip:ast1.example.com:5080;transport=udp", duid="ast1"))
    c = Destination.objects.create(dset=two, uri="sip:ast1.example.com:5080;transport=tcp")
    assert a.server == b.server != c.server
    assert (a.server.transport, a.server.host, a.server.port, a.server.name) == ("udp", "ast1.example.com", 5080, "ast1")
    assert (c.server.transport, c.server.name) == ("tcp", "ast1.example.com:5080")


def test_a_default_port_is_the_same_server_as_an_explicit_one(db):
    one = DispatcherSet.objects.create(setid=1)
    two = DispatcherSet.objects.create(setid=2)
    a = Destination.objects.create(dset=one, uri="sip:10.0.0.11")
    b = Destination.objects.create(dset=two, uri="sip:10.0.0.11:5060")
    assert a.server == b.server and a.server.name == "10.0.0.11:5060"


def test_the_name_is_host_port_when_the_rows_disagree(db):
    one = DispatcherSet.objects.create(setid=1)
    two = DispatcherSet.objects.create(setid=2)
    Destination.objects.create(dset=one, uri="sip:10.0.0.11:5080", duid="ast1")
    Destination.objects.create(dset=two, uri="sip:10.0.0.11:5080", duid="box-a")
    assert Server.objects.get().name == "10.0.0.11:5080"
    Destination.objects.filter(dset=two).get().delete()
    assert Server.objects.get().name == "ast1"


def test_a_row_moved_to_another_uri_changes_server_and_the_empty_one_goes(db):
    one = DispatcherSet.objects.create(setid=1)
    dest = Destination.objects.create(dset=one, uri="sip:10.0.0.11:5080", duid="ast1")
    old = dest.server
    dest.uri = "sip:10.0.0.21:5080"
    save_config(dest)
    dest.refresh_from_db()
    assert dest.server != old and dest.server.host == "10.0.0.21"
    assert not Server.objects.filter(pk=old.pk).exists()


def test_a_server_goes_with_its_last_destination(db, no_publish):
    import_dispatcher_list(SEED.read_text())
    ast3 = Server.objects.get(name="ast3")
    for dest in ast3.destinations.all():
        services.delete_config(dest)
    assert not Server.objects.filter(pk=ast3.pk).exists()
    import_dispatcher_list("1 sip:10.0.0.11:5080 0 10 weight=50;duid=ast1\n", replace=True)
    assert servers() == {"ast1": ("udp", "10.0.0.11", 5080, 1)}


def test_an_edited_name_survives_later_imports(db, admin_user, no_publish):
    import_dispatcher_list(SEED.read_text())
    ast1 = Server.objects.get(name="ast1")
    services.rename_server(ast1, "Asterisk A", actor=admin_user, cause=Cause.USER)
    import_dispatcher_list(SEED.read_text().replace("duid=ast1", "duid=box1"))
    ast1.refresh_from_db()
    assert (ast1.name, ast1.name_edited) == ("Asterisk A", True)
    assert Server.objects.get(host="10.0.0.12").name == "ast2"
    event = StateEvent.objects.get(subject__startswith="renamed server")
    assert (event.old, event.new, event.actor) == ("ast1", "Asterisk A", admin_user)
    # An empty name hands naming back to the rows.
    services.rename_server(ast1, "")
    ast1.refresh_from_db()
    assert (ast1.name, ast1.name_edited) == ("box1", False)


def test_import_adds_rows_to_a_server_that_exists(db, no_publish):
    one = DispatcherSet.objects.create(setid=1)
    existing = Destination.objects.create(dset=one, uri="sip:10.0.0.11:5080", duid="ast1")
    import_dispatcher_list("2 sip:10.0.0.11:5080 0 10 weight=40;duid=ast1\n")
    assert Destination.objects.get(dset__setid=2).server == existing.server
    assert Server.objects.count() == 1


def test_two_servers_whose_rows_give_one_name_get_two(db, no_publish):
    # One DUID in two sets on two boxes, one host:port over UDP and TCP: the second server takes its
    # next name, where it was the first's too (and the call lookup by that name picked one of them).
    import_dispatcher_list(
        "1 sip:10.0.0.11:5080 0 0 duid=ast1\n"
        "2 sip:10.0.0.21:5080 0 0 duid=ast1\n"
        "3 sip:10.0.0.11:5080;transport=tcp 0 0 duid=ast1\n"
    )
    assert servers() == {
        "ast1": ("udp", "10.0.0.11", 5080, 1),
        "10.0.0.21:5080": ("udp", "10.0.0.21", 5080, 1),
        "10.0.0.11:5080": ("tcp", "10.0.0.11", 5080, 1),
    }
    one = DispatcherSet.objects.get(setid=1)
    dest = Destination.objects.create(dset=one, uri="sip:10.0.0.21:5080;transport=tcp", duid="ast2")
    assert dest.server.name == "ast2"
    four = DispatcherSet.objects.create(setid=4)
    dest = Destination.objects.create(dset=four, uri="sip:10.0.0.11:5080;transport=tls", duid="ast1")
    assert dest.server.name == "tls:10.0.0.11:5080"
    # Imported again, nothing moves; once ast1's box goes, the next server its rows name ast1 takes it.
    import_dispatcher_list("2 sip:10.0.0.21:5080 0 0 duid=ast1\n")
    assert Server.objects.get(host="10.0.0.21", transport="udp").name == "10.0.0.21:5080"
    Destination.objects.get(uri="sip:10.0.0.11:5080").delete()
    import_dispatcher_list("2 sip:10.0.0.21:5080 0 0 duid=ast1\n")
    assert Server.objects.get(host="10.0.0.21", transport="udp").name == "ast1"


def test_a_persons_name_is_not_given_to_another_server(db, admin_user, no_publish):
    one = DispatcherSet.objects.create(setid=1)
    a = Destination.objects.create(dset=one, uri="sip:10.0.0.11:5080", duid="ast1")
    services.rename_server(a.server, "ast9", actor=admin_user)
    # A new row whose DUID is that name: its server is made (no IntegrityError), under its address.
    b = save_config(Destination(dset=one, uri="sip:10.0.0.19:5080", duid="ast9"))
    assert (b.server.name, b.server.name_edited) == ("10.0.0.19:5080", False)
    # A rename to a name another server has, whatever the case, is refused naming the field.
    with pytest.raises(services.ServerNameTaken) as refused:
        services.rename_server(b.server, "AST9", actor=admin_user)
    assert list(refused.value.message_dict) == ["name"]
    assert Server.objects.get(pk=b.server.pk).name == "10.0.0.19:5080"
    # Handing the name back to the rows gives the first free one of theirs.
    services.rename_server(a.server, "ast9-old", actor=admin_user)
    services.rename_server(b.server, "box", actor=admin_user)
    services.rename_server(b.server, "")
    assert Server.objects.get(pk=b.server.pk).name == "ast9"


def test_two_servers_swap_names_in_one_import(db, no_publish):
    # The database checks unique names row by row: a swap in one statement would clash with itself.
    import_dispatcher_list("1 sip:10.0.0.11:5080 0 0 duid=ast1\n2 sip:10.0.0.12:5080 0 0 duid=ast2\n")
    import_dispatcher_list("1 sip:10.0.0.11:5080 0 0 duid=ast2\n2 sip:10.0.0.12:5080 0 0 duid=ast1\n")
    assert {s.host: s.name for s in Server.objects.all()} == {"10.0.0.11": "ast2", "10.0.0.12": "ast1"}
