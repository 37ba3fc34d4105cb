"""Behind the TLS front (LBPANEL_BEHIND_TLS): Secure cookies, HSTS, the forwarded scheme believed.
Without it (make run on loopback, plain HTTP) none of that, so a local login still works."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER"]


def settings_with(tmp_path, **env):
    code = f"import json; from django.conf import settings as s; print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))"
    env = {"LBPANEL_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "lbpanel.settings", **env}
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_it_sets_secure_cookies_and_hsts_behind_tls(tmp_path):
    values = settings_with(tmp_path, LBPANEL_BEHIND_TLS="true")
    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_plain_http_on_loopback_keeps_cookies_usable(tmp_path):
    values = settings_with(tmp_path)
    assert values["SESSION_COOKIE_SECURE"] is False and values["SECURE_HSTS_SECONDS"] == 0


@pytest.fixture
def behind_tls(settings):
    settings.BEHIND_TLS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31_536_000


def test_a_login_through_the_front_gets_secure_cookies_and_hsts(client, operator, behind_tls, redis):
    response = client.post("/login/", {"username": "operator", "password": "pw-operator"}, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]
    assert response.cookies["csrftoken"]["secure"]
    assert response["Strict-Transport-Security"] == "max-age=31536000"


def test_every_page_carries_the_content_security_policy(client, viewer, redis):
    client.force_login(viewer)
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
