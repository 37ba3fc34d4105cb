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
