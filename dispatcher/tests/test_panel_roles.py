"""Every panel page refuses the wrong role: 302 to /login/ when anonymous, 403 below the role, 200 at or above."""

import pytest

RANK = {"nobody": 0, "viewer": 1, "operator": 2, "admin": 3}

# (url template, method, least role). {d} is ast1's id, {s} the set's id.
PAGES = [
    ("/", "get", "viewer"),
    ("/destinations/{d}/", "get", "viewer"),
    ("/audit/", "get", "viewer"),
    ("/destinations/{d}/confirm/inactive/", "get", "operator"),
    ("/config/", "get", "admin"),
    ("/config/sets/new/", "get", "admin"),
    ("/config/sets/{s}/", "get", "admin"),
    ("/config/sets/{s}/delete/", "get", "admin"),
    ("/config/destinations/new/", "get", "admin"),
    ("/config/destinations/{d}/", "get", "admin"),
    ("/config/destinations/{d}/delete/", "get", "admin"),
    ("/config/rules/new/", "get", "admin"),
    ("/config/probes/", "get", "admin"),
    ("/config/proxy/", "get", "admin"),
    ("/config/import/", "get", "admin"),
    ("/config/export/", "get", "admin"),
    ("/config/users/", "get", "admin"),
]

POSTS = [
    ("/destinations/{d}/state/", {"state": "inactive"}, "operator"),
    ("/config/probes/preset/", {"preset": "aggressive"}, "admin"),
    ("/config/sets/{s}/delete/", {}, "admin"),
    ("/config/destinations/{d}/delete/", {}, "admin"),
    ("/config/import/", {"text": "1 sip:127.0.0.1:25099 0 0", "preview": "1"}, "admin"),
]


def _url(template, cluster):
    return template.format(d=cluster["ast1"].id, s=cluster["set"].id)


def _login(client, request, role):
    fixture = "admin_user" if role == "admin" else role
    client.force_login(request.getfixturevalue(fixture))


@pytest.mark.parametrize(("template", "method", "least"), PAGES)
def test_it_sends_anonymous_users_to_login(client, cluster, template, method, least):
    url = _url(template, cluster)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("role", ["nobody", "viewer", "operator", "admin"])
@pytest.mark.parametrize(("template", "method", "least"), PAGES)
def test_each_page_allows_its_role_and_refuses_the_rest(client, request, cluster, redis, role, template, method, least):
    _login(client, request, role)
    response = client.get(_url(template, cluster))
    if RANK[role] >= RANK[least]:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert b"403" in response.content and b"not allowed" in response.content


@pytest.mark.parametrize("role", ["nobody", "viewer", "operator", "admin"])
@pytest.mark.parametrize(("template", "data", "least"), POSTS)
def test_each_change_allows_its_role_and_refuses_the_rest(client, request, cluster, redis, role, template, data, least):
    from dispatcher.models import StateEvent

    _login(client, request, role)
    response = client.post(_url(template, cluster), data)
    if RANK[role] >= RANK[least]:
        assert response.status_code in (200, 302)
    else:
        assert response.status_code == 403
        assert not StateEvent.objects.exists()


@pytest.mark.parametrize(("template", "data", "least"), POSTS)
def test_it_refuses_anonymous_changes(client, cluster, template, data, least):
    from dispatcher.models import StateEvent

    response = client.post(_url(template, cluster), data)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not StateEvent.objects.exists()


def test_an_htmx_poll_after_logout_redirects_the_whole_page(client, cluster):
    response = client.get("/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/")
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/login/?next=/")
    assert response.content == b""


def test_it_refuses_state_changes_by_get(client, operator, cluster):
    client.force_login(operator)
    assert client.get(_url("/destinations/{d}/state/", cluster)).status_code == 405


def test_it_answers_404_for_a_missing_destination(client, operator, cluster, redis):
    client.force_login(operator)
    response = client.get("/destinations/999999/")
    assert response.status_code == 404
    assert b"404" in response.content
    assert client.post("/destinations/999999/state/", {"state": "inactive"}).status_code == 404


def test_superusers_count_as_admin(client, django_user_model, cluster, redis):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    client.force_login(root)
    assert client.get("/config/").status_code == 200
