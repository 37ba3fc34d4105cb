from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dispatcher.kamailio_list import DispatcherListError
from dispatcher.models import Destination, DispatcherSet, StateEvent
from dispatcher.services import export_dispatcher_list, import_dispatcher_list

SEED = Path(__file__).parent / "fixtures" / "seed-dispatcher.list"


def entries(text):
    return sorted(line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


@pytest.fixture
def no_publish(monkeypatch):
    # These tests are about the list format; publishing is covered in test_publish.py.
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)


def test_it_round_trips_the_seed_list(db, no_publish):
    import_dispatcher_list(SEED.read_text())
    assert DispatcherSet.objects.count() == 2
    assert Destination.objects.count() == 6
    assert entries(export_dispatcher_list()) == entries(SEED.read_text())


def test_commands_round_trip(db, no_publish, capsys):
    call_command("dispatcher_import", str(SEED))
    call_command("dispatcher_export")
    out = capsys.readouterr().out
    assert entries(out.split("entries changed", 1)[1]) == entries(SEED.read_text())


def test_it_keeps_unknown_attributes_and_hex_flags(db, no_publish):
    text = "3 sip:127.0.0.1:5090;transport=tcp 0x8 7 weight=5;socket=udp:127.0.0.1:5060;mytag=x;duid=a\n"
    import_dispatcher_list(text)
    dest = Destination.objects.get()
    assert dest.probing and dest.priority == 7 and dest.weight == 5 and dest.duid == "a"
    assert entries(export_dispatcher_list()) == [
        ["3", "sip:127.0.0.1:5090;transport=tcp", "8", "7", "weight=5;socket=udp:127.0.0.1:5060;mytag=x;duid=a"]
    ]


def test_flags_set_admin_state(db, no_publish):
    import_dispatcher_list("1 sip:127.0.0.1:5081 1 0\n1 sip:127.0.0.1:5082 4 0\n1 sip:127.0.0.1:5083 0 0\n")
    states = dict(Destination.objects.values_list("uri", "admin_state"))
    assert states == {"sip:127.0.0.1:5081": "inactive", "sip:127.0.0.1:5082": "disabled", "sip:127.0.0.1:5083": "active"}


@pytest.mark.parametrize(
    "bad_line, words",
    [
        ("1 sip::5080 0 0", "no host"),
        ("1 sip:127.0.0.1:5082 0 0 weight=abc", "weight must be a whole number"),
        ("1 sip:127.0.0.1:5082 0 0 duid=ast1", "duid 'ast1' is already used in set 1 on line 1"),
        ("1 http://127.0.0.1 0 0", "not a valid SIP URI"),
        ("x sip:127.0.0.1:5082", "set id must be a number"),
        ("1 sip:127.0.0.1:5082 zz", "flags must be a number"),
    ],
)
def test_a_bad_line_imports_nothing_and_names_the_line(db, no_publish, bad_line, words):
    text = f"1 sip:127.0.0.1:5081 0 0 duid=ast1\n{bad_line}\n"
    with pytest.raises(DispatcherListError) as info:
        import_dispatcher_list(text)
    message = str(info.value)
    assert "line 2" in message and words in message and bad_line.split()[1] in message
    assert Destination.objects.count() == 0 and DispatcherSet.objects.count() == 0


def test_the_command_says_nothing_was_imported(db, no_publish, tmp_path):
    path = tmp_path / "bad.list"
    path.write_text("1 sip:127.0.0.1:5081 0 0 weight=abc\n")
    with pytest.raises(CommandError, match=r"nothing imported\nline 1: weight must be a whole number"):
        call_command("dispatcher_import", str(path))


def test_dry_run_changes_nothing(db, no_publish):
    result = import_dispatcher_list(SEED.read_text(), dry_run=True)
    assert len(result.changes) == 8  # two sets, six destinations
    assert Destination.objects.count() == 0 and StateEvent.objects.count() == 0


def test_merge_updates_and_replace_removes(db, no_publish):
    import_dispatcher_list(SEED.read_text())
    result = import_dispatcher_list("1 sip:10.0.0.11:5080 0 10 weight=60;duid=ast1\n")
    assert result.changes == ["~ set 1 sip:10.0.0.11:5080: weight 50 → 60, attrs 'weight=50;duid=ast1' → 'weight=60;duid=ast1'"]
    assert Destination.objects.count() == 6
    result = import_dispatcher_list("1 sip:10.0.0.11:5080 0 10 weight=60;duid=ast1\n", replace=True)
    assert Destination.objects.count() == 1 and DispatcherSet.objects.count() == 1
    assert "- set 2" in result.changes


def test_import_is_audited(db, no_publish):
    import_dispatcher_list(SEED.read_text())
    assert StateEvent.objects.filter(cause="import", kind="config").count() == 8


def test_a_state_change_reads_plainly_in_the_preview(db, no_publish):
    import_dispatcher_list("1 sip:127.0.0.1:5081 0 0\n")
    result = import_dispatcher_list("1 sip:127.0.0.1:5081 1 0\n", dry_run=True)
    assert result.changes == ["~ set 1 sip:127.0.0.1:5081: admin_state 'active' → 'inactive'"]


def test_an_imported_set_is_unnamed_so_it_reads_set_1_once(db, no_publish):
    # Named "set 1", the panel showed "set 1 · set 1"; dispatcher.list has no names to import.
    import_dispatcher_list(SEED.read_text())
    assert [(s.name, str(s)) for s in DispatcherSet.objects.order_by("setid")] == [("", "set 1"), ("", "set 2")]
