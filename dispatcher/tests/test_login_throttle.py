"""Logins are throttled per user name and per address (django-axes); no endpoint takes HTTP Basic."""

import base64

import pytest

LIMIT = 5


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def log_in(client, username, password, address="192.0.2.10"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_it_refuses_the_right_password_after_too_many_wrong_ones(client, operator):
    for _ in range(LIMIT - 1):
        assert log_in(client, "operator", "guess").status_code == 200
    assert log_in(client, "operator", "guess").status_code == 429  # the failure that reaches the limit
    response = log_in(client, "operator", "pw-operator")
    assert response.status_code == 429
    assert b"Too many failed logins for this user or from this address" in response.content
    assert client.get("/").status_code == 302  # still not logged in


def test_it_locks_a_user_name_whatever_the_address(client, operator):
    for n in range(LIMIT):
        log_in(client, "operator", "guess", address=f"192.0.2.{n + 1}")
    assert log_in(client, "operator", "pw-operator", address="198.51.100.7").status_code == 429


def test_it_locks_an_address_whatever_the_user_name(client, operator):
    for n in range(LIMIT):
        log_in(client, f"user{n}", "guess", address="192.0.2.66")
    assert log_in(client, "operator", "pw-operator", address="192.0.2.66").status_code == 429


def test_others_still_log_in_while_one_address_is_locked(client, operator, viewer):
    for n in range(LIMIT):
        log_in(client, f"user{n}", "guess", address="192.0.2.66")
    assert log_in(client, "viewer", "pw-viewer", address="198.51.100.7").status_code == 302


def test_the_django_admin_login_counts_too(client, admin_user):
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "admin", "password": "guess"}, REMOTE_ADDR="192.0.2.10")
    response = client.post("/admin/login/", {"username": "admin", "password": "pw-admin"}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 429


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_api_docs_are_no_password_oracle(client, operator, redis, path):
    wrong = client.get(path, HTTP_AUTHORIZATION=basic("operator", "guess"))
    right = client.get(path, HTTP_AUTHORIZATION=basic("operator", "pw-operator"))
    assert wrong.status_code == right.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/stats/", "/api/v1/destinations/"])
def test_the_api_refuses_basic_auth(client, operator, redis, path):
    response = client.get(path, HTTP_AUTHORIZATION=basic("operator", "pw-operator"))
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Token")


def test_it_counts_the_forwarded_address_behind_the_tls_front(client, operator, viewer, settings):
    settings.BEHIND_TLS = True
    for n in range(LIMIT):
        client.post(
            "/login/", {"username": f"user{n}", "password": "guess"}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5"
        )
    # Another client behind the same front is not locked out with the attacker.
    ok = client.post(
        "/login/", {"username": "viewer", "password": "pw-viewer"}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert ok.status_code == 302
