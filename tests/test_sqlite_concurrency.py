"""The default SQLite setup (make run) under 200 concurrent state changes: every one answered, none
with 500 "database is locked". A real gunicorn with several worker processes and threads, a real
SQLite file, the API as scripts use it."""

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import TEST_REDIS_URL
from tests.ports import is_free

ROOT = Path(__file__).resolve().parents[1]
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 23000) + 800
CHANGES = 200

pytestmark = pytest.mark.slow


def manage(env, *args):
    proc = subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def sqlite_panel(tmp_path):
    """gunicorn on a fresh SQLite database, with 10 destinations and an admin's API key."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'lbpanel.sqlite3'}",
        "LBPANEL_VAR_DIR": str(tmp_path),
        "REDIS_URL": TEST_REDIS_URL,
        "LBPANEL_SECRET_KEY": "sqlite-test",
        "LBPANEL_ADMIN_PASSWORD": "sqlite-test-pw",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "ensure_admin")
    (tmp_path / "dispatcher.list").write_text("".join(f"1 sip:127.0.0.1:{25100 + n} 0 0 duid=ast{n}\n" for n in range(10)))
    manage(env, "dispatcher_import", str(tmp_path / "dispatcher.list"))
    key = manage(env, "create_api_token", "admin").rstrip("\n").splitlines()[-1]
    port = next(p for p in range(PORT_BASE, PORT_BASE + 100) if is_free(p))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "lbpanel.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "4",
            "--threads",
            "8",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # polling for readiness, not sleeping in place of it
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
    yield base, key, tmp_path / "lbpanel.sqlite3"
    proc.terminate()
    proc.wait(timeout=15)


def call(base, key, path, body=None):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_concurrent_state_changes_on_sqlite_get_no_500(sqlite_panel):
    base, key, database = sqlite_panel
    status, body = call(base, key, "/api/v1/destinations/")
    ids = [d["id"] for d in json.loads(body)["results"]]
    assert status == 200 and len(ids) == 10
    states = ("inactive", "active")

    def change(n):
        return call(base, key, f"/api/v1/destinations/{ids[n % 10]}/state", {"state": states[n // 10 % 2], "reason": f"load {n}"})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(change, range(CHANGES)))
    failures = [(status, body[:200]) for status, body in answers if status != 200]
    assert failures == []
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
