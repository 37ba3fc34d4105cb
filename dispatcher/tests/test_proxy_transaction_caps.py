"""The proxy's transaction caps are proxy settings: edited in Configuration → Proxy, checked
on the field, published with the table for every proxy."""

import pytest

from dispatcher.tests.test_proxy_tcp_settings import _form
from lbcore import contract


def test_it_edits_and_publishes_the_transaction_caps(panel_admin, cluster, redis, django_capture_on_commit_callbacks):
    page = panel_admin.get("/config/proxy/").content.decode()
    assert 'name="max_transactions"' in page and 'name="max_transactions_per_source"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = panel_admin.post("/config/proxy/", _form(cluster, max_transactions=5000, max_transactions_per_source=40))
        assert response.status_code == 302
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert (table.settings["max_transactions"], table.settings["max_transactions_per_source"]) == (5000, 40)
    assert len(table.settings["dialog_secret"]) == 64, "the cluster's Record-Route key travels with the table"


@pytest.mark.parametrize("field, value", [("max_transactions", 10), ("max_transactions_per_source", 0)])
def test_it_refuses_a_cap_that_would_stop_all_traffic(panel_admin, cluster, field, value):
    page = panel_admin.post("/config/proxy/", _form(cluster, **{field: value})).content.decode()
    assert f'data-field="{field}"' in page
