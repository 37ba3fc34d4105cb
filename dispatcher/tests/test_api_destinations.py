from dispatcher.models import Destination, StateEvent

URL = "/api/v1/destinations/"
NEW = {"set": 1, "uri": "sip:127.0.0.1:5099", "duid": "ast9", "weight": 10, "priority": 1}


def test_it_lists_destinations_with_kamailio_flags(as_viewer, table):
    body = as_viewer.get(URL).json()
    assert body["count"] == 4
    first = body["results"][0]
    assert first["set"] == 1 and first["uri"] == "sip:127.0.0.1:5081" and first["kamailio_flags"] == "A" and first["flags"] == 0


def test_it_filters_by_set_state_and_duid(as_viewer, table):
    Destination.objects.filter(duid="ast2", dset__setid=1).update(admin_state="inactive")
    assert [d["uri"] for d in as_viewer.get(URL, {"set": 2}).json()["results"]] == ["sip:127.0.0.1:5091"]
    assert [d["duid"] for d in as_viewer.get(URL, {"state": "inactive"}).json()["results"]] == ["ast2"]
    assert as_viewer.get(URL, {"duid": "ast1"}).json()["count"] == 2
    response = as_viewer.get(URL, {"state": "sleeping"})
    assert response.status_code == 400 and "state" in response.json()


def test_it_requires_authentication(anonymous, table):
    assert anonymous.get(URL).status_code == 401
    assert anonymous.get(f"{URL}{table['dests'][0].pk}/").status_code == 401


def test_it_refuses_a_user_without_role(as_nobody, table):
    assert as_nobody.get(URL).status_code == 403


def test_it_creates_a_destination_through_services(as_admin, table):
    response = as_admin.post(URL, NEW, format="json")
    assert response.status_code == 201, response.json()
    dest = Destination.objects.get(uri=NEW["uri"])
    assert dest.dset.setid == 1 and dest.attrs == "weight=10;duid=ast9"
    assert StateEvent.objects.get(destination=dest).cause == "api"


def test_operators_and_viewers_cannot_change_configuration(as_operator, as_viewer, table):
    assert as_operator.post(URL, NEW, format="json").status_code == 403
    dest = table["dests"][0]
    assert as_operator.patch(f"{URL}{dest.pk}/", {"weight": 1}, format="json").status_code == 403
    assert as_viewer.delete(f"{URL}{dest.pk}/").status_code == 403


def test_a_read_only_token_cannot_write(as_readonly_admin, table):
    response = as_readonly_admin.post(URL, NEW, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "This token is read-only."


def test_validation_errors_name_the_field(as_admin, table):
    response = as_admin.post(URL, {**NEW, "uri": "http://127.0.0.1", "rweight": 101, "set": 42}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"uri", "rweight", "set"}
    assert "not a valid SIP URI" in body["uri"][0]
    assert "setid=42" in body["set"][0]


def test_a_missing_field_is_named(as_admin, table):
    response = as_admin.post(URL, {"set": 1}, format="json")
    assert response.status_code == 400 and response.json() == {"uri": ["This field is required."]}


def test_a_duplicate_uri_or_duid_in_a_set_is_a_conflict(as_admin, table):
    response = as_admin.post(URL, {**NEW, "uri": "sip:127.0.0.1:5081"}, format="json")
    assert response.status_code == 409 and response.json() == {"uri": ["sip:127.0.0.1:5081 is already in set 1."]}
    response = as_admin.post(URL, {**NEW, "duid": "ast2"}, format="json")
    assert response.status_code == 409 and list(response.json()) == ["duid"]
    # The same server may be in another set.
    assert as_admin.post(URL, {**NEW, "uri": "sip:127.0.0.1:5081", "set": 2, "duid": ""}, format="json").status_code == 201


def test_it_updates_a_destination_and_its_attrs(as_admin, table):
    dest = table["dests"][0]
    response = as_admin.patch(f"{URL}{dest.pk}/", {"weight": 70, "maxload": 40}, format="json")
    assert response.status_code == 200
    dest.refresh_from_db()
    assert dest.weight == 70 and dest.attrs == "weight=70;duid=ast1;maxload=40"


def test_changing_admin_state_by_patch_is_audited_as_a_state_change(as_admin, table):
    dest = table["dests"][0]
    assert as_admin.patch(f"{URL}{dest.pk}/", {"admin_state": "disabled"}, format="json").status_code == 200
    assert StateEvent.objects.filter(destination=dest, kind="admin", new="disabled", cause="api").exists()


def test_it_deletes_a_destination(as_admin, table):
    dest = table["dests"][3]
    assert as_admin.delete(f"{URL}{dest.pk}/").status_code == 204
    assert not Destination.objects.filter(pk=dest.pk).exists()
    assert StateEvent.objects.filter(subject__startswith="deleted destination", cause="api").exists()


def test_unknown_destination_is_404(as_admin, as_viewer):
    assert as_viewer.get(f"{URL}999999/").status_code == 404
    assert as_admin.patch(f"{URL}999999/", {"weight": 1}, format="json").status_code == 404


def test_wrong_method_is_405(as_admin, table):
    assert as_admin.put(URL, NEW, format="json").status_code == 405
    assert as_admin.post(f"{URL}{table['dests'][0].pk}/", NEW, format="json").status_code == 405


def test_a_new_destination_without_weight_gets_the_forms_weight_not_0(as_admin, table):
    # 0 in a weighted set means a backup: a script that forgot the field made one without a word.
    from dispatcher.models import DispatcherSet

    new = {k: v for k, v in NEW.items() if k != "weight"}
    Destination.objects.filter(dset__setid=1).update(weight=30)
    response = as_admin.post(URL, new, format="json")
    assert response.status_code == 201 and response.json()["weight"] == 30  # the weight the set's rows carry
    DispatcherSet.objects.create(setid=3, name="empty")
    response = as_admin.post(URL, {**new, "set": 3, "uri": "sip:127.0.0.1:5098"}, format="json")
    assert response.status_code == 201 and response.json()["weight"] == 1  # as the form, in an empty set
    assert Destination.objects.get(uri="sip:127.0.0.1:5098").attrs == "weight=1;duid=ast9"
    # Said is kept, 0 included; an update without weight keeps the row's.
    response = as_admin.post(URL, {**new, "set": 3, "uri": "sip:127.0.0.1:5097", "duid": "", "weight": 0}, format="json")
    assert response.status_code == 201 and response.json()["weight"] == 0
    dest = Destination.objects.get(uri="sip:127.0.0.1:5097")
    assert as_admin.patch(f"{URL}{dest.pk}/", {"priority": 3}, format="json").json()["weight"] == 0


def test_the_schema_says_what_an_omitted_weight_is(as_viewer, db):
    schema = as_viewer.get("/api/schema/?format=json").json()["components"]["schemas"]
    weight = schema["Destination"]["properties"]["weight"]
    assert "Omitted on create: the weight most of the set's destinations carry, 1 in an empty set" in weight["description"]


def test_a_field_it_cannot_change_is_refused_naming_it(as_admin, table):
    dest = table["dests"][0]
    response = as_admin.patch(f"{URL}{dest.pk}/", {"weight": 7, "health": "up", "server": 99, "wieght": 8}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert sorted(body) == ["health", "server", "wieght"]
    assert "change uri" in body["server"][0] and "admin_state" in body["health"][0]
    assert body["wieght"][0].startswith("No such field here; the fields it takes: set, uri, duid, priority, weight,")
    assert Destination.objects.get(pk=dest.pk).weight == 50  # nothing of the request was applied
    response = as_admin.post(URL, {**NEW, "flags": 1}, format="json")
    assert response.status_code == 400 and "admin_state and probing" in response.json()["flags"][0]
    assert not Destination.objects.filter(uri=NEW["uri"]).exists()


def test_a_get_body_sent_back_with_one_field_changed_is_accepted(as_admin, table):
    # GET, edit, PUT the whole body: the read-only fields carry the values they have, no change asked
    dest = table["dests"][0]
    body = as_admin.get(f"/api/v1/destinations/{dest.pk}/").json()
    body["weight"] = 42
    response = as_admin.put(f"/api/v1/destinations/{dest.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["weight"] == 42
    body["health"] = "up" if body["health"] != "up" else "down"  # a read-only field, changed: refused
    response = as_admin.put(f"/api/v1/destinations/{dest.pk}/", body, format="json")
    assert response.status_code == 400 and list(response.json()) == ["health"]
