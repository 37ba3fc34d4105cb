"""Configuration by admins: sets, destinations, source rules, probe and proxy settings; errors on the field; audited."""

import pytest

from dispatcher.models import Destination, DispatcherSet, ProbeSettings, ProxySettings, SourceRule, StateEvent


def test_it_creates_a_set_with_the_algorithm_by_name_and_number(panel_admin, admin_user, redis):
    page = panel_admin.get("/config/sets/new/").content.decode()
    assert "10 · call load — The server with the fewest active calls for its weight, never above maxload" in page
    response = panel_admin.post("/config/sets/new/", {"setid": 7, "name": "agents", "algorithm": 10, "failover_codes": "500,503"})
    assert response.status_code == 302 and response["Location"] == "/config/"
    dset = DispatcherSet.objects.get(setid=7)
    assert dset.algorithm == 10
    event = StateEvent.objects.get()
    assert (event.kind, event.cause, event.actor) == ("config", "user", admin_user)
    assert "created dispatcher set" in event.subject


def test_it_shows_errors_on_the_field(panel_admin, cluster, redis):
    response = panel_admin.post("/config/sets/new/", {"setid": 1, "algorithm": 5, "failover_codes": "five"})
    html = response.content.decode()
    assert response.status_code == 200
    assert '<p class="field-error" data-field="setid">' in html
    assert '<p class="field-error" data-field="algorithm">' in html
    assert '<p class="field-error" data-field="failover_codes">' in html
    assert DispatcherSet.objects.count() == 1 and not StateEvent.objects.exists()


def test_it_creates_a_destination(panel_admin, cluster, redis):
    data = {
        "dset": cluster["set"].id,
        "uri": "sip:127.0.0.1:25090",
        "duid": "ast9",
        "priority": 0,
        "weight": 10,
        "rweight": 0,
        "maxload": 0,
    }
    assert panel_admin.post("/config/destinations/new/", data).status_code == 302
    dest = Destination.objects.get(duid="ast9")
    assert "weight=10" in dest.attrs and "duid=ast9" in dest.attrs


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"uri": "http://nope"}, "uri"),
        ({"uri": "sip:127.0.0.1:25081"}, "uri"),  # ast1's URI, already in the set
        ({"duid": "ast2"}, "duid"),
        ({"rweight": 101}, "rweight"),
    ],
)
def test_destination_errors_land_on_the_field(panel_admin, cluster, redis, change, field):
    data = {
        "dset": cluster["set"].id,
        "uri": "sip:127.0.0.1:25090",
        "duid": "ast9",
        "priority": 0,
        "weight": 10,
        "rweight": 0,
        "maxload": 0,
    }
    html = panel_admin.post("/config/destinations/new/", {**data, **change}).content.decode()
    assert f'data-field="{field}"' in html, html
    assert Destination.objects.count() == 3


def test_it_edits_a_destination_through_the_service(panel_admin, cluster, redis):
    ast1 = cluster["ast1"]
    data = {"dset": ast1.dset_id, "uri": ast1.uri, "duid": "ast1", "priority": 5, "weight": 70, "rweight": 0, "maxload": 0}
    assert panel_admin.post(f"/config/destinations/{ast1.id}/", data).status_code == 302
    ast1.refresh_from_db()
    assert (ast1.weight, ast1.priority) == (70, 5)
    event = StateEvent.objects.get(destination=ast1)
    assert "weight=50" in event.old and "weight=70" in event.new
    audit = panel_admin.get("/audit/").content.decode()
    assert "weight 50 → 70" in audit


def test_deleting_a_destination_names_its_calls_and_is_audited(panel_admin, cluster, redis):
    from dispatcher.tests.panel_support import write_node

    ast1 = cluster["ast1"]
    write_node(redis, destinations={ast1.id: {"active": 9}})
    assert "has 9 active calls" in panel_admin.get(f"/config/destinations/{ast1.id}/delete/").content.decode()
    assert panel_admin.post(f"/config/destinations/{ast1.id}/delete/", {"reason": "decommissioned"}).status_code == 302
    assert not Destination.objects.filter(pk=ast1.pk).exists()
    event = StateEvent.objects.get()
    assert event.subject.startswith("deleted destination") and event.reason == "decommissioned"


def test_a_set_with_destinations_is_not_offered_for_deletion(panel_admin, cluster, redis):
    html = panel_admin.get(f"/config/sets/{cluster['set'].id}/delete/").content.decode()
    assert "still has 3 destination(s)" in html and "Delete dispatcher set</button>" not in html


def test_it_manages_source_rules(panel_admin, cluster, redis):
    response = panel_admin.post("/config/rules/new/", {"network": "203.0.113.0/24", "dset": cluster["set"].id})
    assert response.status_code == 302
    rule = SourceRule.objects.get()
    html = panel_admin.post(f"/config/rules/{rule.id}/", {"network": "300.1.1.1", "dset": cluster["set"].id}).content.decode()
    assert 'data-field="network"' in html
    assert panel_admin.post(f"/config/rules/{rule.id}/delete/").status_code == 302
    assert not SourceRule.objects.exists()


def test_it_applies_a_probe_preset(panel_admin, admin_user, redis):
    page = panel_admin.get("/config/probes/").content.decode()
    assert "Aggressive (10 s × 2, down within 20 s)" in page
    assert panel_admin.post("/config/probes/preset/", {"preset": "aggressive"}).status_code == 302
    probe = ProbeSettings.load()
    assert (probe.ping_interval, probe.probing_threshold) == (10, 2)
    assert StateEvent.objects.get().reason == "preset aggressive"
    panel_admin.post("/config/probes/preset/", {"preset": "reckless"})
    assert ProbeSettings.load().ping_interval == 10


def test_it_edits_probe_settings_with_errors_on_the_field(panel_admin, redis):
    data = {
        "ping_interval": 0,
        "probing_threshold": 3,
        "inactive_threshold": 1,
        "ping_reply_codes": "",
        "ping_method": "OPTIONS",
        "ping_from": "sip:dispatcher@localhost",
        "ping_timeout_ms": 2000,
        "probing_mode": 1,
        "recovery_interval": 1,
    }
    assert 'data-field="ping_interval"' in panel_admin.post("/config/probes/", data).content.decode()
    assert panel_admin.post("/config/probes/", {**data, "ping_interval": 20}).status_code == 302
    assert ProbeSettings.load().ping_interval == 20


def test_it_edits_proxy_settings(panel_admin, cluster, redis):
    data = {
        "default_set": cluster["set"].id,
        "fr_timer_ms": 5000,
        "fr_inv_timer_ms": 30000,
        "trying_timeout_ms": 500,
        "suspect_hold_ms": 30000,
        "trusted_networks": "127.0.0.0/8, nonsense",
        "server_header": "lbpanel",
        "max_pending_invites": 5000,
        "overload_lag_ms": 200,
        "retry_after_s": 5,
        "dialog_timeout_s": 10800,
        "tcp_idle_timeout_s": 300,
        "tcp_message_timeout_ms": 10000,
        "tcp_max_connections": 4096,
        "tcp_max_per_ip": 64,
        "max_transactions": 300000,
        "max_transactions_per_source": 1000,
        "hep_destination": "",
        "hep_capture_id": 2001,
        "call_log_retention_s": 3600,
        "call_log_max": 1000000,
    }
    assert 'data-field="trusted_networks"' in panel_admin.post("/config/proxy/", data).content.decode()
    assert panel_admin.post("/config/proxy/", {**data, "trusted_networks": "127.0.0.0/8"}).status_code == 302
    assert ProxySettings.load().default_set == cluster["set"]


def test_the_overview_lists_everything(panel_admin, cluster, redis, django_assert_max_num_queries):
    from dispatcher.tests.panel_support import make_destination, make_set

    more = make_set(2, "carriers")
    for n in range(10, 30):
        make_destination(more, n)
    panel_admin.get("/config/")  # the first load creates the settings rows
    # session, user, groups, probe settings, proxy settings, sets, destinations, rules, alert
    # channels failing (the banner on every page)
    with django_assert_max_num_queries(9):
        html = panel_admin.get("/config/").content.decode()
    assert "set 1 · agents" in html and "sip:127.0.0.1:25083" in html and "Source rules" in html


def test_the_overview_says_1_good_reply_and_1_failed_probe(panel_admin, redis):
    """It said "Up after 1 good replies" (the default threshold)."""
    ProbeSettings.objects.update_or_create(pk=1, defaults={"probing_threshold": 1, "inactive_threshold": 1})
    html = panel_admin.get("/config/").content.decode()
    assert "<dd>1 good reply</dd>" in html and "<dd>1 failed probe (" in html
    ProbeSettings.objects.filter(pk=1).update(probing_threshold=3, inactive_threshold=2)
    html = panel_admin.get("/config/").content.decode()
    assert "<dd>2 good replies</dd>" in html and "<dd>3 failed probes (" in html


PROBES = {
    "ping_interval": 15,
    "probing_threshold": 3,
    "inactive_threshold": 1,
    "ping_reply_codes": "",
    "ping_method": "OPTIONS",
    "ping_from": "sip:dispatcher@localhost",
    "ping_timeout_ms": 2000,
    "probing_mode": 1,
    "recovery_interval": 1,
}


@pytest.mark.parametrize(
    ("field", "minimum"), [("probing_threshold", 1), ("inactive_threshold", 1), ("ping_interval", 1), ("ping_timeout_ms", 50)]
)
def test_a_number_field_states_one_minimum_whatever_is_under_it(panel_admin, redis, field, minimum):
    """-1 was refused with "greater than or equal to 0", then 0 with "greater than or equal to 1"."""
    from dispatcher.forms import ProbeSettingsForm

    for value in (-1, 0, minimum - 1):
        form = ProbeSettingsForm(data={**PROBES, field: value}, instance=ProbeSettings.load())
        assert form.errors[field] == [f"Ensure this value is greater than or equal to {minimum}."], value
    assert ProbeSettingsForm().fields[field].widget.attrs["min"] == minimum
    page = panel_admin.post("/config/probes/", {**PROBES, field: -1}).content.decode()
    assert f"greater than or equal to {minimum}." in page and "greater than or equal to 0." not in page
