"""Every field that reaches SIP (or a dispatcher.list line) refuses CR/LF and other injection,
wherever it is written: the API, the panel's forms, dispatcher.list import and the Django admin.
Each refusal is a 400 (or the form again) naming the field, and nothing is saved."""

import pytest
from django.urls import reverse

from dispatcher.models import Destination, ProbeSettings, ProxySettings, StateEvent

CRLF = "\r\nContact: <sip:evil@203.0.113.9>\r\nP-Asserted-Identity: <sip:boss@example.com>"
# No @ after the injection: the URI parser alone used to take this one.
PARAM_CRLF = ";x=1\r\nP-Asserted-Identity: sip:boss;x=1"

BAD_URIS = [
    "sip:127.0.0.1:5099" + PARAM_CRLF,
    "sip:127.0.0.1:5099;x=1" + CRLF,
    "sip:127.0.0.1:5099;x=1\nX-Injected: 1",
    "sip:127.0.0.1:5099;x=\x00",
    "sip:127.0.0.1:5099 SIP/2.0",
    "sip:127.0.0.1:5099?Contact=sip:evil",
    "sip:127.0.0.1:5099>;x=<sip:a",
]
BAD_METHODS = ["<i>PM</i>", "OPTIONS" + CRLF, "OPT IONS", "OPTIONS;x"]
BAD_SERVERS = ["lbpanel" + CRLF, "lbpanel\nX: y", "lb\x00panel", "<b>lbpanel</b>", "lbpanel; x"]


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", BAD_URIS)
def test_the_api_refuses_an_injected_destination_uri(as_admin, table, uri):
    response = as_admin.post("/api/v1/destinations/", {"set": 1, "uri": uri, "duid": "ast9"}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["uri"] and "not a valid SIP URI" in response.json()["uri"][0]
    assert not Destination.objects.filter(duid="ast9").exists()


def test_the_api_refuses_an_injected_uri_on_update_too(as_admin, table):
    dest = table["dests"][0]
    response = as_admin.patch(f"/api/v1/destinations/{dest.pk}/", {"uri": BAD_URIS[0]}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["uri"]
    dest.refresh_from_db()
    assert dest.uri == "sip:127.0.0.1:5081"


@pytest.mark.parametrize(
    ("field", "value"),
    [("attrs", "weight=5" + CRLF), ("attrs", "weight=5\n2 sip:203.0.113.9 0 0"), ("duid", "ast9" + CRLF), ("duid", "ast 9;x")],
)
def test_the_api_refuses_control_characters_in_attrs_and_duid(as_admin, table, field, value):
    response = as_admin.post("/api/v1/destinations/", {"set": 1, "uri": "sip:127.0.0.1:5099", field: value}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Destination.objects.filter(uri="sip:127.0.0.1:5099").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ping_from", "sip:lb@localhost" + PARAM_CRLF),
        ("ping_from", "sip:lb@localhost>;x=<sip:a"),
        *[("ping_method", m) for m in BAD_METHODS],
    ],
)
def test_the_api_refuses_injected_probe_settings(as_admin, field, value):
    response = as_admin.patch("/api/v1/probe-settings/", {field: value}, format="json")
    assert response.status_code == 400 and list(response.json()) == [field], response.content
    settings = ProbeSettings.load()
    assert (settings.ping_method, settings.ping_from) == ("OPTIONS", "sip:dispatcher@localhost")


def test_the_api_takes_any_sip_token_as_ping_method(as_admin):
    assert as_admin.patch("/api/v1/probe-settings/", {"ping_method": "INFO"}, format="json").status_code == 200
    assert ProbeSettings.load().ping_method == "INFO"


# --- dispatcher.list import (API, panel, command) ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1 sip:127.0.0.1:5099;x=\x01 0 0\n", "not a valid SIP URI"),
        ("1 sip:127.0.0.1:5099;x=1\rContact: <sip:evil@203.0.113.9> 0 0\n", "set id must be a number"),
        ("1 sip:127.0.0.1:5099 0 0 weight=5;x=\x01\n", "attrs"),
        ("1 sip:127.0.0.1:5099 0 0 duid=a\x7fb\n", "duid"),
    ],
)
def test_the_import_api_refuses_injection_and_imports_nothing(as_admin, table, text, words):
    response = as_admin.post("/api/v1/dispatcher.list", {"text": text}, format="json")
    assert response.status_code == 400, response.content
    assert words in str(response.json())
    assert not Destination.objects.filter(uri__startswith="sip:127.0.0.1:5099").exists()


# --- the panel ---------------------------------------------------------------------------------


@pytest.fixture
def panel_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def _form_data(model, form):
    """What the settings form holds now, as a browser would post it back."""
    from django.forms.models import model_to_dict

    return {k: v for k, v in model_to_dict(model.load(), fields=form._meta.fields).items() if v is not None}


@pytest.fixture
def PROBES(db):  # noqa: N802 - reads as the constant it stands for
    from dispatcher.forms import ProbeSettingsForm

    return _form_data(ProbeSettings, ProbeSettingsForm)


@pytest.fixture
def PROXY(db):  # noqa: N802
    from dispatcher.forms import ProxySettingsForm

    return _form_data(ProxySettings, ProxySettingsForm)


@pytest.mark.parametrize("uri", BAD_URIS)
def test_the_panel_refuses_an_injected_destination_uri(panel_admin, cluster, redis, uri):
    data = {"dset": cluster["set"].id, "uri": uri, "duid": "ast9", "priority": 0, "weight": 10, "rweight": 0, "maxload": 0}
    html = panel_admin.post("/config/destinations/new/", data).content.decode()
    assert 'data-field="uri"' in html
    assert not Destination.objects.filter(duid="ast9").exists()


@pytest.mark.parametrize(
    ("field", "value"), [("ping_from", "sip:lb@localhost" + PARAM_CRLF), *[("ping_method", m) for m in BAD_METHODS]]
)
def test_the_panel_refuses_injected_probe_settings(panel_admin, redis, PROBES, field, value):  # noqa: N803
    html = panel_admin.post("/config/probes/", {**PROBES, field: value}).content.decode()
    assert f'data-field="{field}"' in html
    assert not StateEvent.objects.exists()


@pytest.mark.parametrize("value", BAD_SERVERS)
def test_the_panel_refuses_an_injected_server_header(panel_admin, redis, PROXY, value):  # noqa: N803
    html = panel_admin.post("/config/proxy/", {**PROXY, "server_header": value}).content.decode()
    assert 'data-field="server_header"' in html
    assert ProxySettings.load().server_header == "lbpanel"


def test_the_panel_takes_a_server_header_with_a_version_and_comment(panel_admin, redis, PROXY):  # noqa: N803
    assert panel_admin.post("/config/proxy/", {**PROXY, "server_header": "lbpanel/2.1 (site A)"}).status_code == 302
    assert ProxySettings.load().server_header == "lbpanel/2.1 (site A)"


def test_the_panel_import_refuses_injection(panel_admin, redis):
    response = panel_admin.post("/config/import/", {"text": "1 sip:127.0.0.1:5099;x=\x01 0 0\n", "apply": "1"})
    assert "not a valid SIP URI" in response.content.decode()
    assert not Destination.objects.exists()


# --- the Django admin --------------------------------------------------------------------------


def test_the_admin_refuses_an_injected_destination_uri(admin_client, cluster, monkeypatch):
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)
    dest = cluster["ast1"]
    form = {
        "dset": dest.dset_id,
        "uri": BAD_URIS[0],
        "priority": 0,
        "weight": 0,
        "rweight": 0,
        "duid": "ast1",
        "maxload": 0,
        "attrs": "",
        "extra_flags": 0,
        "description": "",
        "admin_state": "active",
    }
    response = admin_client.post(reverse("admin:dispatcher_destination_change", args=[dest.pk]), form)
    assert response.status_code == 200 and "not a valid SIP URI" in response.content.decode()
    dest.refresh_from_db()
    assert "\r" not in dest.uri


def test_the_admin_refuses_an_injected_server_header_and_ping_method(admin_client, db, monkeypatch, PROBES, PROXY):  # noqa: N803
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)
    response = admin_client.post(
        reverse("admin:dispatcher_proxysettings_change", args=[1]), {**PROXY, "server_header": BAD_SERVERS[0]}
    )
    assert response.status_code == 200 and "is not a Server header value" in response.content.decode()
    response = admin_client.post(
        reverse("admin:dispatcher_probesettings_change", args=[1]), {**PROBES, "ping_method": "<i>PM</i>"}
    )
    assert response.status_code == 200 and "is not a SIP method name" in response.content.decode()
    assert ProxySettings.load().server_header == "lbpanel" and ProbeSettings.load().ping_method == "OPTIONS"
