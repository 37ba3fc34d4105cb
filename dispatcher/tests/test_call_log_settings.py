"""Call record retention is a proxy setting: edited in Configuration → Proxy, checked on the field,
published with the table; 0 records turns recording off (a proxy reads it as off, not as the default)."""

from dispatcher.tests.test_proxy_tcp_settings import _form
from lbcore import calls, contract


def test_it_edits_and_publishes_the_call_log_settings(panel_admin, cluster, redis, django_capture_on_commit_callbacks):
    page = panel_admin.get("/config/proxy/").content.decode()
    assert 'name="call_log_retention_s"' in page and 'name="call_log_max"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = panel_admin.post("/config/proxy/", _form(cluster, call_log_retention_s=600, call_log_max=0))
        assert response.status_code == 302
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert calls.retention(table.settings) == (600, 0)


def test_it_refuses_a_retention_under_a_minute(panel_admin, cluster):
    page = panel_admin.post("/config/proxy/", _form(cluster, call_log_retention_s=5)).content.decode()
    assert 'data-field="call_log_retention_s"' in page


def test_a_table_without_the_settings_records_with_the_defaults():
    assert calls.retention({}) == (3600, 1_000_000)
