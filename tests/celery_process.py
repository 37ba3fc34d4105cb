"""A real Celery worker or beat as a child process of a test, on the test database and Redis.

Shared by the probe tests, the whole-system test and bench/probe_round.py: both need the same environment for the
child and the same start/stop/log handling.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30


def child_database_url(django_db_blocker, why):
    """The pytest-django test database as a URL a child process can use; skip on SQLite (`why`)."""
    import pytest
    from django.db import connection

    with django_db_blocker.unblock():
        d = connection.settings_dict
        if connection.vendor != "postgresql":
            pytest.skip(f"{why}: set DATABASE_URL to PostgreSQL")
        auth = quote(d["USER"] or "postgres") + (":" + quote(d["PASSWORD"]) if d["PASSWORD"] else "")
        return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


def child_env(database_url, redis_url, queue, log_level="INFO"):
    env = dict(os.environ)
    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(key, None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        DJANGO_SETTINGS_MODULE="lbpanel.settings",
        PYTHONPATH=str(ROOT),
        LBPANEL_LOG_LEVEL=log_level,
        PYTHONUNBUFFERED="1",
    )
    return env


class CeleryProcess:
    """`celery -A lbpanel <args>` as a child; ready when its output shows `ready_text`, output kept for failure reports."""

    def __init__(self, name, args, env, ready_text):
        self.name = name
        self.lines = []
        self.ready = threading.Event()
        self.ready_text = ready_text
        cmd = [sys.executable, "-m", "celery", "-A", "lbpanel", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, name=f"{name}-output", daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if self.ready_text in line:
                self.ready.set()

    def wait_ready(self):
        if not self.ready.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"celery {self.name} never logged {self.ready_text!r}:\n" + self.log(-40))
        if self.proc.poll() is not None:
            raise RuntimeError(f"celery {self.name} exited with {self.proc.returncode}:\n" + self.log(-40))
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self, last=None):
        return "\n".join(self.lines if last is None else self.lines[last:])
