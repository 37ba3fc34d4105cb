"""SIP capture is a proxy setting: edited in Configuration → Proxy, checked on the field
(a bad HOST:PORT is refused with a message naming it), published with the table."""

import pytest

from dispatcher.models import ProxySettings
from dispatcher.tests.test_proxy_tcp_settings import _form
from lbcore import contract


def test_it_is_off_by_default(db):
    proxy = ProxySettings.load()
    assert (proxy.hep_destination, proxy.hep_capture_id) == ("", 2001)


def test_it_edits_and_publishes_the_hep_destination(panel_admin, cluster, redis, django_capture_on_commit_callbacks):
    page = panel_admin.get("/config/proxy/").content.decode()
    assert 'name="hep_destination"' in page and 'name="hep_capture_id"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = panel_admin.post(
            "/config/proxy/", _form(cluster, hep_destination=" homer.example.com:9060 ", hep_capture_id=3)
        )
        assert response.status_code == 302
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert (table.settings["hep_destination"], table.settings["hep_capture_id"]) == ("homer.example.com:9060", 3)
    assert "homer.example.com:9060" in panel_admin.get("/config/").content.decode()


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("hep_destination", "10.0.0.5", "the port is missing"),
        ("hep_destination", "10.0.0.5:99999", "1 to 65535"),
        ("hep_destination", "239.1.1.1:9060", "multicast"),
        ("hep_capture_id", 4294967296, "4294967295"),
        ("hep_capture_id", -1, "greater than or equal to 0"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_field(panel_admin, cluster, redis, field, value, says):
    page = panel_admin.post("/config/proxy/", _form(cluster, **{field: value})).content.decode()
    assert f'data-field="{field}"' in page
    assert says in page
    assert ProxySettings.load().hep_destination == ""
