from dispatcher.models import SourceRule, StateEvent

URL = "/api/v1/source-rules/"


def test_it_creates_and_lists_rules(as_admin, as_viewer, table):
    response = as_admin.post(URL, {"network": "203.0.113.10", "set": 2, "description": "carrier A"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["network"] == "203.0.113.10/32"
    assert StateEvent.objects.get().cause == "api"
    body = as_viewer.get(URL).json()
    assert body["count"] == 1 and body["results"][0]["set"] == 2


def test_a_duplicate_network_is_a_conflict(as_admin, table):
    SourceRule.objects.create(network="203.0.113.10/32", dset=table["sets"][2])
    response = as_admin.post(URL, {"network": "203.0.113.10", "set": 1}, format="json")
    assert response.status_code == 409 and list(response.json()) == ["network"]


def test_a_bad_network_names_the_field(as_admin, table):
    response = as_admin.post(URL, {"network": "203.0.113.300", "set": 1}, format="json")
    assert response.status_code == 400 and "not an IP address or CIDR" in response.json()["network"][0]


def test_it_updates_and_deletes_a_rule(as_admin, table):
    rule = SourceRule.objects.create(network="198.51.100.0/24", dset=table["sets"][2])
    assert as_admin.patch(f"{URL}{rule.pk}/", {"set": 1}, format="json").json()["set"] == 1
    assert as_admin.delete(f"{URL}{rule.pk}/").status_code == 204
    assert not SourceRule.objects.exists()


def test_it_requires_authentication(anonymous):
    assert anonymous.get(URL).status_code == 401


def test_it_refuses_operator_and_read_only_writes(as_operator, as_readonly_admin, table):
    assert as_operator.post(URL, {"network": "203.0.113.10", "set": 2}, format="json").status_code == 403
    assert as_readonly_admin.post(URL, {"network": "203.0.113.10", "set": 2}, format="json").status_code == 403


def test_unknown_rule_is_404_and_wrong_method_405(as_admin, db):
    assert as_admin.get(f"{URL}999999/").status_code == 404
    assert as_admin.delete(URL).status_code == 405
