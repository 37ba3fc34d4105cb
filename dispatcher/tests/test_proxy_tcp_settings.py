"""The proxy's TCP limits are proxy settings: edited in Configuration → Proxy, checked on the
field, published with the table for every proxy."""

import pytest

from dispatcher.models import ProxySettings
from lbcore import contract

TCP = {"tcp_idle_timeout_s": 120, "tcp_message_timeout_ms": 5000, "tcp_max_connections": 2000, "tcp_max_per_ip": 16}


def _form(cluster, **tcp):
    return {
        "default_set": cluster["set"].id,
        "fr_timer_ms": 5000,
        "fr_inv_timer_ms": 30000,
        "trying_timeout_ms": 500,
        "suspect_hold_ms": 30000,
        "trusted_networks": "127.0.0.0/8",
        "server_header": "lbpanel",
        "max_pending_invites": 5000,
        "overload_lag_ms": 200,
        "retry_after_s": 5,
        "dialog_timeout_s": 10800,
        "max_transactions": 300000,
        "max_transactions_per_source": 1000,
        "hep_destination": "",
        "hep_capture_id": 2001,
        "call_log_retention_s": 3600,
        "call_log_max": 1000000,
        **TCP,
        **tcp,
    }


def test_it_edits_and_publishes_the_tcp_limits(panel_admin, cluster, redis, django_capture_on_commit_callbacks):
    page = panel_admin.get("/config/proxy/").content.decode()
    for name in TCP:
        assert f'name="{name}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        assert panel_admin.post("/config/proxy/", _form(cluster)).status_code == 302
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert {k: table.settings[k] for k in TCP} == TCP


@pytest.mark.parametrize(
    "field, value", [("tcp_idle_timeout_s", 0), ("tcp_message_timeout_ms", 50), ("tcp_max_connections", 0), ("tcp_max_per_ip", 0)]
)
def test_it_refuses_a_limit_that_would_stop_tcp(panel_admin, cluster, redis, field, value):
    response = panel_admin.post("/config/proxy/", _form(cluster, **{field: value}))
    assert response.status_code == 200 and f'data-field="{field}"' in response.content.decode()
    assert getattr(ProxySettings.load(), field) == ProxySettings._meta.get_field(field).default


def test_a_table_without_them_gets_the_defaults():
    settings = contract.decode_table('{"version": 1, "sets": {}, "settings": {}}').settings
    assert (
        settings["tcp_idle_timeout_s"],
        settings["tcp_message_timeout_ms"],
        settings["tcp_max_connections"],
        settings["tcp_max_per_ip"],
    ) == (300, 10000, 4096, 64)
