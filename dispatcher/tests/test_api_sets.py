from dispatcher.models import Destination, DispatcherSet, ProxySettings, SourceRule, StateEvent

URL = "/api/v1/sets/"


def test_it_lists_sets_paginated(as_viewer, table):
    body = as_viewer.get(URL).json()
    assert body["count"] == 2 and body["next"] is None
    assert [(s["setid"], s["destination_count"]) for s in body["results"]] == [(1, 3), (2, 1)]


def test_it_answers_one_set_by_setid(as_viewer, table):
    assert as_viewer.get(f"{URL}2/").json()["name"] == "inbound"


def test_it_requires_authentication(anonymous):
    assert anonymous.get(URL).status_code == 401
    assert anonymous.post(URL, {"setid": 3}, format="json").status_code == 401


def test_it_refuses_a_user_without_role(as_nobody):
    assert as_nobody.get(URL).status_code == 403


def test_it_creates_a_set_and_audits_it(as_admin, admin_user):
    response = as_admin.post(URL, {"setid": 3, "name": "campaign", "algorithm": 10}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["destination_count"] == 0
    event = StateEvent.objects.get()
    assert event.cause == "api" and event.actor == admin_user and "created dispatcher set" in event.subject


def test_it_refuses_operator_writes(as_operator):
    response = as_operator.post(URL, {"setid": 3}, format="json")
    assert response.status_code == 403 and "admin role" in response.json()["detail"]


def test_it_refuses_writes_with_a_read_only_token(as_readonly_admin):
    response = as_readonly_admin.post(URL, {"setid": 3}, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "This token is read-only."


def test_it_refuses_viewer_writes(as_viewer, table):
    assert as_viewer.patch(f"{URL}1/", {"name": "x"}, format="json").status_code == 403
    assert as_viewer.delete(f"{URL}1/").status_code == 403


def test_a_duplicate_setid_is_a_conflict(as_admin, table):
    response = as_admin.post(URL, {"setid": 1}, format="json")
    assert response.status_code == 409 and response.json() == {"setid": ["Set 1 already exists."]}


def test_validation_errors_name_the_field(as_admin):
    response = as_admin.post(URL, {"setid": 3, "algorithm": 5, "failover_codes": "500,abc"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"algorithm", "failover_codes"}
    assert "'abc' is not a SIP response code" in response.json()["failover_codes"][0]


def test_it_updates_a_set(as_admin, table):
    response = as_admin.patch(f"{URL}1/", {"algorithm": 8}, format="json")
    assert response.status_code == 200 and response.json()["algorithm"] == 8
    assert DispatcherSet.objects.get(setid=1).algorithm == 8


def test_a_field_it_cannot_change_is_refused_naming_it(as_admin, table):
    response = as_admin.patch(f"{URL}1/", {"algorithm": 8, "destination_count": 0, "algoritm": 9}, format="json")
    assert response.status_code == 400 and sorted(response.json()) == ["algoritm", "destination_count"]
    assert response.json()["destination_count"] == ["Read-only: the API shows it and cannot change it."]
    assert DispatcherSet.objects.get(setid=1).algorithm != 8
    response = as_admin.post("/api/v1/source-rules/", {"network": "192.0.2.0/24", "set": 1, "id": 7}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["id"]
    assert not SourceRule.objects.exists()


def test_unknown_set_is_404(as_admin, as_viewer):
    assert as_viewer.get(f"{URL}99/").status_code == 404
    assert as_admin.delete(f"{URL}99/").status_code == 404


def test_wrong_method_is_405(as_admin):
    assert as_admin.delete(URL).status_code == 405


def test_it_deletes_an_empty_set(as_admin, table):
    Destination.objects.filter(dset__setid=2).delete()
    assert as_admin.delete(f"{URL}2/").status_code == 204
    assert not DispatcherSet.objects.filter(setid=2).exists()
    assert StateEvent.objects.filter(subject__startswith="deleted dispatcher set", cause="api").exists()


def test_it_explains_why_a_set_in_use_stays(as_admin, table):
    response = as_admin.delete(f"{URL}2/")
    assert response.status_code == 409 and "still has 1 destination" in response.json()["setid"][0]
    Destination.objects.filter(dset__setid=2).delete()
    SourceRule.objects.create(network="203.0.113.10/32", dset=table["sets"][2])
    response = as_admin.delete(f"{URL}2/")
    assert response.status_code == 409 and "203.0.113.10/32" in response.json()["setid"][0]
    SourceRule.objects.all().delete()
    proxy = ProxySettings.load()
    proxy.default_set = table["sets"][2]
    proxy.save()
    response = as_admin.delete(f"{URL}2/")
    assert response.status_code == 409 and "default set" in response.json()["setid"][0]
    assert DispatcherSet.objects.filter(setid=2).exists()


def test_the_list_costs_the_same_queries_for_more_sets(as_viewer, table, django_assert_max_num_queries):
    for setid in range(10, 30):
        DispatcherSet.objects.create(setid=setid)
    # token lookup, last_used, role groups, count, page
    with django_assert_max_num_queries(6):
        assert as_viewer.get(URL).json()["count"] == 22
