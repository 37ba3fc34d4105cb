"""The audit log keeps every field of a change, however long the row: before and after are JSON
snapshots, and the diff shown is computed from them, not from a summary cut to a column."""

from dispatcher import services
from dispatcher.models import ProxySettings, StateEvent


def test_a_retry_after_change_shows_what_changed(client, viewer, redis):
    proxy = ProxySettings.load()
    proxy.retry_after_s = 7
    services.save_config(proxy)
    client.force_login(viewer)
    html = client.get("/audit/").content.decode()
    assert "retry_after_s 5 → 7" in html and "no field changed" not in html


def test_the_whole_row_is_kept_and_the_text_says_where_it_was_cut(db):
    proxy = ProxySettings.load()
    proxy.retry_after_s = 7
    services.save_config(proxy)
    event = StateEvent.objects.get(subject="updated proxy settings proxy settings")
    assert (event.before["retry_after_s"], event.after["retry_after_s"]) == (5, 7)
    assert event.after["max_transactions_per_source"] == 1000  # the last field, far past 255 characters of text
    assert len(event.new) == 255 and event.new.endswith("…")


def test_the_api_answers_the_snapshots(client, viewer, redis):
    proxy = ProxySettings.load()
    proxy.retry_after_s = 7
    services.save_config(proxy)
    client.force_login(viewer)
    [row] = client.get("/api/v1/events/?kind=config").json()["results"]
    assert (row["before"]["retry_after_s"], row["after"]["retry_after_s"]) == (5, 7)


def test_a_role_change_shows_the_account_as_it_was_and_is(client, admin_user, viewer, redis):
    services.set_user_role(viewer, "operator", actor=admin_user)
    client.force_login(admin_user)
    assert "account viewer → operator" in client.get("/audit/").content.decode()


def test_rows_from_before_snapshots_are_read_back_from_their_text(client, viewer, redis):
    from importlib import import_module

    from django.apps import apps

    long_old = "a=1, trusted_networks=10.0.0.0/8, 192.168.0.0/16, " + "x" * 300
    legacy = [
        StateEvent(
            subject="updated destination d", kind="config", old="weight=50, duid=ast1", new="weight=70, duid=ast1", cause="user"
        ),
        StateEvent(subject="created destination d", kind="config", old="", new="weight=70", cause="user"),
        StateEvent(subject="updated proxy settings", kind="config", old=long_old[:255], new=long_old[:255], cause="user"),
        StateEvent(subject="updated user viewer", kind="config", old="viewer", new="operator", cause="user"),
        StateEvent(subject="set 1 ast1", kind="admin", old="active", new="inactive", cause="user"),
    ]
    StateEvent.objects.bulk_create(legacy)
    import_module("dispatcher.migrations.0011_stateevent_before_after").backfill(apps, None)
    updated, created, cut, account, admin = StateEvent.objects.order_by("id")
    assert (updated.before, updated.after) == ({"weight": "50", "duid": "ast1"}, {"weight": "70", "duid": "ast1"})
    assert (created.before, created.after) == (None, {"weight": "70"})
    assert cut.before == {"a": "1"}  # trusted_networks ran past the column: it is not made up
    assert account.before is None and admin.before is None
    client.force_login(viewer)
    html = client.get("/audit/").content.decode()
    assert "weight 50 → 70" in html and "no change in the 255 characters kept of this row" in html
    assert "viewer → operator" in html
