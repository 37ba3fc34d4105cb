from dispatcher.models import StateEvent

URL = "/api/v1/events/"


def make_events(dest, n, cause="user"):
    for i in range(n):
        StateEvent.objects.create(
            destination=dest, subject=str(dest), kind="admin", old="active", new="inactive", cause=cause, reason=f"#{i}"
        )


def test_it_pages_the_audit_log_newest_first(as_viewer, table):
    make_events(table["dests"][0], 55)
    first = as_viewer.get(URL).json()
    assert first["count"] == 55 and len(first["results"]) == 50 and first["next"]
    assert first["results"][0]["reason"] == "#54"
    second = as_viewer.get(first["next"]).json()
    assert len(second["results"]) == 5 and second["next"] is None


def test_it_filters_by_cause_kind_set_and_destination(as_viewer, table):
    make_events(table["dests"][0], 2, cause="api")
    make_events(table["dests"][3], 3, cause="probe")
    assert as_viewer.get(URL, {"cause": "api"}).json()["count"] == 2
    assert as_viewer.get(URL, {"set": 2}).json()["count"] == 3
    assert as_viewer.get(URL, {"destination": table["dests"][0].pk, "kind": "admin"}).json()["count"] == 2
    assert as_viewer.get(URL, {"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    response = as_viewer.get(URL, {"cause": "magic"})
    assert response.status_code == 400 and "cause" in response.json()


def test_it_answers_one_event(as_viewer, table):
    make_events(table["dests"][0], 1)
    event = StateEvent.objects.get()
    assert as_viewer.get(f"{URL}{event.pk}/").json()["new"] == "inactive"


def test_it_requires_authentication_and_a_role(anonymous, as_nobody):
    assert anonymous.get(URL).status_code == 401
    assert as_nobody.get(URL).status_code == 403


def test_it_is_read_only(as_admin, table):
    make_events(table["dests"][0], 1)
    event = StateEvent.objects.get()
    assert as_admin.post(URL, {}, format="json").status_code == 405
    assert as_admin.delete(f"{URL}{event.pk}/").status_code == 405
    assert as_admin.patch(f"{URL}{event.pk}/", {"reason": "x"}, format="json").status_code == 405


def test_unknown_event_is_404(as_viewer, db):
    assert as_viewer.get(f"{URL}999999/").status_code == 404
