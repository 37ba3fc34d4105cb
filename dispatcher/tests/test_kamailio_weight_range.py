"""Kamailio ignores a weight outside 1-100 (it logs and uses 0): lbpanel warns in the destination
form and the import preview, and the export refuses such a list, naming the line and the weight,
unless told to write it anyway (panel download, API, management command)."""

import io

import pytest
from django.core.management import CommandError, call_command

from dispatcher.models import Destination, DispatcherSet
from dispatcher.services import import_dispatcher_list
from dispatcher.tests.api_support import client_for

LIST = "1 sip:127.0.0.1:5081 0 0 weight=50;duid=ast1\n1 sip:127.0.0.1:5082 0 0 weight=250;duid=ast2\n"
REFUSED_LINE = "1 sip:127.0.0.1:5082 0 0 weight=250;duid=ast2"


@pytest.fixture
def heavy(db):
    import_dispatcher_list(LIST)


def test_the_form_warns_when_kamailio_would_ignore_the_weight(panel_admin, redis):
    dset = DispatcherSet.objects.create(setid=1, algorithm=9)
    data = {"dset": dset.pk, "uri": "sip:127.0.0.1:5081", "priority": 0, "weight": 250, "rweight": 0, "maxload": 0}
    html = panel_admin.post("/config/destinations/new/", data, follow=True).content.decode()
    assert Destination.objects.get().weight == 250  # lbpanel takes it: the warning is about Kamailio
    assert "weight 250 is outside Kamailio&#x27;s 1-100" in html


def test_the_import_preview_warns_by_line(panel_admin, redis):
    html = panel_admin.post("/config/import/", {"text": LIST, "preview": "1"}).content.decode()
    assert 'data-testid="kamailio-warnings"' in html and "line 2: weight 250 is outside Kamailio&#x27;s 1-100" in html
    assert "line 1:" not in html


def test_the_panel_export_refuses_with_the_line_and_offers_to_write_it_anyway(panel_admin, heavy, redis):
    response = panel_admin.get("/config/export/")
    html = response.content.decode()
    assert response.status_code == 409 and 'data-testid="export-refused"' in html
    assert f'<td class="mono">4</td><td class="mono small">{REFUSED_LINE}</td>' in html  # two comment lines first
    assert "/config/export/?anyway=1" in html
    anyway = panel_admin.get("/config/export/?anyway=1")
    assert anyway.status_code == 200 and REFUSED_LINE in anyway.content.decode()


def test_the_api_export_refuses_with_409_unless_anyway(admin_user, heavy, redis):
    api = client_for(admin_user)
    response = api.get("/api/v1/dispatcher.list")
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "line": 4,
            "text": REFUSED_LINE,
            "message": "weight 250 is outside Kamailio's 1-100: Kamailio would ignore it (weight 0) for this destination",
        }
    ]
    assert REFUSED_LINE in api.get("/api/v1/dispatcher.list?anyway=1").content.decode()


def test_the_api_import_answers_the_warnings(admin_user, redis):
    body = client_for(admin_user).post("/api/v1/dispatcher.list?dry_run=1", LIST, content_type="text/plain").json()
    assert body["warnings"] == [
        "line 2: weight 250 is outside Kamailio's 1-100: Kamailio would ignore it (weight 0) for this destination"
    ]


def test_the_command_refuses_unless_anyway(heavy):
    with pytest.raises(CommandError, match=r"line 4: weight 250 is outside Kamailio's 1-100"):
        call_command("dispatcher_export", stdout=io.StringIO())
    out = io.StringIO()
    call_command("dispatcher_export", "--anyway", stdout=out)
    assert REFUSED_LINE in out.getvalue()


def test_weights_kamailio_reads_export_as_before(panel_admin, db, redis):
    import_dispatcher_list("1 sip:127.0.0.1:5081 0 0 weight=100\n1 sip:127.0.0.1:5082 0 0 weight=1\n1 sip:127.0.0.1:5083\n")
    assert panel_admin.get("/config/export/").status_code == 200
