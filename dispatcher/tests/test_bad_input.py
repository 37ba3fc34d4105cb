"""Input nobody should send gets a 400 that names the problem, never a 500: numbers past the
database's columns, JSON nested thousands deep, bodies past LBPANEL_MAX_BODY_BYTES."""

import json

import pytest

from dispatcher.models import Destination, DispatcherSet, StateEvent

IMPORT = "/api/v1/dispatcher.list"
HUGE = "99999999999999999999"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def panel_admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{HUGE} sip:127.0.0.1:5081", f"set id must be 0 to 2147483647, got {HUGE}"),
        (f"1 sip:127.0.0.1:5081 {HUGE}", f"flags must be 0 to 2147483647, got {HUGE}"),
        (f"1 sip:127.0.0.1:5081 0 {HUGE}", f"priority must be -2147483648 to 2147483647, got {HUGE}"),
        (f"1 sip:127.0.0.1:5081 0 0 maxload={HUGE}", f"maxload must be at most 2147483647, got {HUGE}"),
    ],
)
def test_the_import_api_names_a_number_too_big(as_admin, line, message):
    response = as_admin.generic("POST", IMPORT, line, content_type="text/plain")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["line"], error["message"]) == (1, message)


def test_the_panel_import_names_a_set_id_too_big(panel_admin, redis):
    response = panel_admin.post("/config/import/", {"text": f"{HUGE} sip:127.0.0.1:5081", "preview": "1"})
    assert response.status_code == 200
    assert f"set id must be 0 to 2147483647, got {HUGE}" in response.content.decode()
    assert not DispatcherSet.objects.exists()


def test_the_api_names_a_set_id_too_big(as_admin):
    response = as_admin.post("/api/v1/sets/", {"setid": HUGE, "name": "x"}, format="json")
    assert response.status_code == 400 and "setid" in response.json()


def test_rpc_refuses_deeply_nested_json(as_admin):
    response = as_admin.generic("POST", "/rpc", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": -32700,
        "message": "Parse Error",
        "data": "the body nests arrays or objects too deeply",
    }


def test_the_api_refuses_deeply_nested_json(as_admin):
    response = as_admin.generic("POST", "/api/v1/sets/", DEEP, content_type="application/json")
    assert response.status_code == 400 and "nests arrays or objects too deeply" in response.json()["detail"]


@pytest.mark.parametrize("path", [IMPORT, "/rpc", "/api/v1/sets/"])
def test_the_api_refuses_a_body_past_the_limit(as_admin, settings, path):
    settings.MAX_BODY_BYTES = 1024
    response = as_admin.generic("POST", path, "1 sip:127.0.0.1:5081\n" * 100, content_type="text/plain")
    assert response.status_code == 400
    assert (
        response.json()["detail"]
        == "The request body is 2,100 bytes; the most this panel accepts is 1,024 (LBPANEL_MAX_BODY_BYTES)."
    )


def test_the_import_api_takes_a_body_of_30_mib_by_default_no_more(as_admin):
    body = "# padding\n" * (3 * 1024 * 1024)  # 30 MiB
    response = as_admin.generic("POST", IMPORT, body, content_type="text/plain")
    assert response.status_code == 400 and "LBPANEL_MAX_BODY_BYTES" in response.json()["detail"]


def test_the_panel_refuses_a_body_past_the_limit(panel_admin, settings, redis):
    settings.MAX_BODY_BYTES = 1024
    response = panel_admin.post("/config/import/", {"text": "1 sip:127.0.0.1:5081\n" * 100, "preview": "1"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "the most this panel accepts is 1,024 (LBPANEL_MAX_BODY_BYTES)" in html and "Traceback" not in html


def big_list(lines):
    return "".join(
        f"{1 + n % 20} sip:10.{n // 65536}.{n // 256 % 256}.{n % 256}:5080 8 {n % 7} weight={1 + n % 50};duid=ast{n}\n"
        for n in range(lines)
    )


def test_a_20000_line_dry_run_takes_a_constant_number_of_queries(as_admin, django_assert_max_num_queries):
    with django_assert_max_num_queries(60):
        response = as_admin.generic("POST", IMPORT + "?dry_run=1", big_list(20_000), content_type="text/plain")
    assert response.status_code == 200 and response.json()["changed"] == 20_020  # 20 sets, 20,000 destinations
    assert not Destination.objects.exists() and not StateEvent.objects.filter(subject__contains="destination").exists()


def test_a_20000_line_import_then_a_replace_keeps_its_audit(as_admin, django_assert_max_num_queries):
    text = big_list(20_000)
    with django_assert_max_num_queries(60):
        assert as_admin.generic("POST", IMPORT, text, content_type="text/plain").status_code == 200
    assert Destination.objects.count() == 20_000
    assert StateEvent.objects.filter(subject__startswith="created destination set ").count() == 20_000
    changed = text.replace(" 8 0 ", " 9 0 ", 1)  # one line goes into maintenance (flag 1)
    with django_assert_max_num_queries(60):
        body = as_admin.generic("POST", IMPORT + "?replace=1", changed + "", content_type="text/plain").json()
    assert body["changed"] == 1 and Destination.objects.filter(admin_state="inactive").count() == 1
    assert StateEvent.objects.filter(kind="admin", new="inactive", reason="dispatcher.list import").count() == 1


def test_an_import_still_refuses_a_duid_another_destination_has(as_admin):
    assert as_admin.generic("POST", IMPORT, "1 sip:127.0.0.1:5081 0 0 duid=ast1\n", content_type="text/plain").status_code == 200
    response = as_admin.generic("POST", IMPORT, "1 sip:127.0.0.1:5082 0 0 duid=ast1\n", content_type="text/plain")
    assert response.status_code == 400
    assert "duid: sip:127.0.0.1:5081 in set 1 already has DUID 'ast1'." in json.dumps(
        response.json()["errors"], ensure_ascii=False
    )
