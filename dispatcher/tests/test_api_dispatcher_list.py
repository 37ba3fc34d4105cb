from pathlib import Path

from dispatcher.models import Destination, StateEvent

URL = "/api/v1/dispatcher.list"
SEED = (Path(__file__).parent / "fixtures" / "seed-dispatcher.list").read_text()


def entries(text):
    return sorted(line.split() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def test_it_exports_text(as_viewer, table):
    response = as_viewer.get(URL)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert ["1", "sip:127.0.0.1:5081", "0", "10", "weight=50;duid=ast1"] in entries(response.content.decode())


def test_it_imports_a_text_body(as_admin, db):
    response = as_admin.generic("POST", URL, SEED, content_type="text/plain")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is False and body["changed"] == len(body["changes"]) > 0
    assert entries(as_admin.get(URL).content.decode()) == entries(SEED)
    assert StateEvent.objects.filter(cause="api").exists()


def test_it_imports_a_json_body(as_admin, db):
    response = as_admin.post(URL, {"text": "4 sip:127.0.0.1:5095 0 0 duid=x"}, format="json")
    assert response.status_code == 200 and response.json()["changes"] == ["+ set 4", "+ 4 sip:127.0.0.1:5095 0 0 duid=x"]


def test_a_dry_run_shows_changes_and_changes_nothing(as_admin, table):
    response = as_admin.generic(
        "POST", URL + "?dry_run=1", "1 sip:127.0.0.1:5081 1 10 weight=50;duid=ast1\n", content_type="text/plain"
    )
    body = response.json()
    assert response.status_code == 200 and body["dry_run"] is True
    [change] = body["changes"]
    assert change.startswith("~ set 1 sip:127.0.0.1:5081: admin_state 'active' → ")
    assert Destination.objects.get(uri="sip:127.0.0.1:5081", dset__setid=1).admin_state == "active"
    assert not StateEvent.objects.exists()


def test_replace_removes_what_the_file_lacks(as_admin, table):
    response = as_admin.generic(
        "POST", URL + "?replace=1", "1 sip:127.0.0.1:5081 0 10 weight=50;duid=ast1\n", content_type="text/plain"
    )
    assert response.status_code == 200
    assert list(Destination.objects.values_list("uri", flat=True)) == ["sip:127.0.0.1:5081"]


def test_bad_lines_are_400_by_line_number(as_admin, table):
    text = "1 sip:127.0.0.1:5099 0 0\n# comment\n1 sip:127.0.0.1:5098 zz\n2 http://x 0 0\n"
    response = as_admin.generic("POST", URL, text, content_type="text/plain")
    assert response.status_code == 400
    body = response.json()
    assert [e["line"] for e in body["errors"]] == [3, 4]
    assert "flags must be a number" in body["errors"][0]["message"] and body["errors"][0]["text"] == "1 sip:127.0.0.1:5098 zz"
    assert not Destination.objects.filter(uri="sip:127.0.0.1:5099").exists()


def test_bad_query_and_body_name_the_field(as_admin, db):
    response = as_admin.generic("POST", URL + "?dry_run=perhaps", "", content_type="text/plain")
    assert response.status_code == 400 and list(response.json()) == ["dry_run"]
    response = as_admin.post(URL, {"txt": "1 sip:127.0.0.1:5099"}, format="json")
    assert response.status_code == 400 and sorted(response.json()) == ["text", "txt"]
    response = as_admin.generic("POST", URL, b"1 sip:127.0.0.1:5099 0 0 x=\xff", content_type="text/plain")
    assert response.status_code == 400 and list(response.json()) == ["text"]


def test_dry_run_in_the_body_is_refused_not_ignored(as_admin, db):
    # It was dropped without a word, and the import made for real what the client meant to preview.
    response = as_admin.post(URL, {"text": "1 sip:127.0.0.1:5099\n", "dry_run": True}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "dry_run": ["dry_run is a query parameter, not part of the body: POST /api/v1/dispatcher.list?dry_run=1."]
    }
    assert not Destination.objects.filter(uri="sip:127.0.0.1:5099").exists()


def test_it_requires_authentication(anonymous):
    assert anonymous.get(URL).status_code == 401
    assert anonymous.generic("POST", URL, "", content_type="text/plain").status_code == 401


def test_only_an_admin_with_a_write_token_imports(as_operator, as_viewer, as_readonly_admin, db):
    for client in (as_operator, as_viewer, as_readonly_admin):
        assert client.generic("POST", URL, SEED, content_type="text/plain").status_code == 403
    assert not Destination.objects.exists()


def test_other_methods_are_405(as_admin):
    assert as_admin.delete(URL).status_code == 405
    assert as_admin.put(URL, {}, format="json").status_code == 405


def test_an_unknown_path_is_404(as_admin):
    assert as_admin.get("/api/v1/dispatcher.lists").status_code == 404
