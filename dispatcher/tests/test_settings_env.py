import pytest
from django.core.exceptions import ImproperlyConfigured

from lbpanel.env import envbool, envint, secret_key


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("OFF", False), ("", False)])
def test_envbool_understands_the_usual_words(monkeypatch, value, expected):
    monkeypatch.setenv("LBPANEL_X", value)
    assert envbool("LBPANEL_X", "false") is expected


def test_envbool_refuses_what_it_does_not_understand(monkeypatch):
    monkeypatch.setenv("LBPANEL_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="LBPANEL_DEBUG='maybe' is not a boolean"):
        envbool("LBPANEL_DEBUG", "false")


def test_envint_names_the_variable(monkeypatch):
    monkeypatch.setenv("LBPANEL_WEB_WORKERS", "two")
    with pytest.raises(ImproperlyConfigured, match="LBPANEL_WEB_WORKERS='two' is not an integer"):
        envint("LBPANEL_WEB_WORKERS", 2)


def test_secret_from_file(monkeypatch, tmp_path):
    (tmp_path / "key").write_text("s3cret\n")
    monkeypatch.delenv("LBPANEL_SECRET_KEY", raising=False)
    monkeypatch.setenv("LBPANEL_SECRET_KEY_FILE", str(tmp_path / "key"))
    assert secret_key(tmp_path) == "s3cret"


def test_secret_is_generated_once(monkeypatch, tmp_path):
    monkeypatch.delenv("LBPANEL_SECRET_KEY", raising=False)
    monkeypatch.delenv("LBPANEL_SECRET_KEY_FILE", raising=False)
    first = secret_key(tmp_path / "var")
    assert len(first) > 40 and secret_key(tmp_path / "var") == first


def test_a_bad_database_url_stops_the_start(tmp_path):
    import subprocess
    import sys

    env = {"DATABASE_URL": "mysql//nope", "LBPANEL_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert proc.returncode != 0
    assert "DATABASE_URL" in proc.stderr


def test_a_half_sentinel_setting_stops_the_start(tmp_path):
    import subprocess
    import sys

    env = {"REDIS_SENTINELS": "127.0.0.1:26379", "LBPANEL_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert proc.returncode != 0
    assert "REDIS_SENTINEL_MASTER" in proc.stderr


def test_with_sentinels_celery_uses_them_for_broker_and_results(tmp_path):
    import subprocess
    import sys

    env = {
        "REDIS_URL": "redis://127.0.0.1:6379/5",
        "REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2:26379",
        "REDIS_SENTINEL_MASTER": "lb",
        "LBPANEL_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    code = (
        "from django.conf import settings as s; "
        "print(s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND, s.CELERY_BROKER_TRANSPORT_OPTIONS['master_name'], "
        "s.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS['master_name'])"
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    urls = "sentinel://10.0.0.1:26379/5;sentinel://10.0.0.2:26379/5"
    assert proc.stdout.split() == [urls, urls, "lb", "lb"], proc.stderr
