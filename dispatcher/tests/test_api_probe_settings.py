from dispatcher.models import ProbeSettings, StateEvent

URL = "/api/v1/probe-settings/"


def test_it_reads_the_settings(as_viewer):
    body = as_viewer.get(URL).json()
    assert body["ping_interval"] == 15 and body["probing_threshold"] == 3 and body["probing_mode"] == 1


def test_an_admin_updates_them(as_admin):
    response = as_admin.patch(
        URL, {"ping_interval": 10, "probing_threshold": 2, "ping_reply_codes": "code=404;class=2"}, format="json"
    )
    assert response.status_code == 200, response.json()
    settings = ProbeSettings.load()
    assert (settings.ping_interval, settings.probing_threshold) == (10, 2)
    assert StateEvent.objects.get().cause == "api"


def test_validation_errors_name_the_field(as_admin):
    response = as_admin.patch(URL, {"ping_interval": 0, "ping_reply_codes": "code=999"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"ping_interval", "ping_reply_codes"}


def test_it_requires_authentication(anonymous):
    assert anonymous.get(URL).status_code == 401


def test_it_refuses_operator_and_read_only_writes(as_operator, as_readonly_admin):
    assert as_operator.patch(URL, {"ping_interval": 10}, format="json").status_code == 403
    assert as_readonly_admin.put(URL, {"ping_interval": 10}, format="json").status_code == 403


def test_wrong_method_is_405(as_admin):
    assert as_admin.delete(URL).status_code == 405
    assert as_admin.post(URL, {}, format="json").status_code == 405


def test_there_is_nothing_to_404(as_viewer):
    assert as_viewer.get(URL + "1/").status_code == 404
