"""Login, logout and the header that says who is logged in and with which role."""

import pytest


def test_it_logs_in_and_shows_user_and_role(client, operator):
    response = client.post("/login/", {"username": "operator", "password": "pw-operator"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    html = response.content.decode()
    assert 'data-testid="user">operator<' in html
    assert 'data-testid="role">operator<' in html


def test_it_says_when_the_password_is_wrong(client, operator):
    response = client.post("/login/", {"username": "operator", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_it_logs_out_by_post(client, viewer):
    client.force_login(viewer)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(("fixture", "sees_config"), [("viewer", False), ("operator", False), ("admin_user", True)])
def test_only_admins_see_the_configuration_link(client, request, db, redis, fixture, sees_config):
    client.force_login(request.getfixturevalue(fixture))
    assert (b'href="/config/"' in client.get("/").content) is sees_config
