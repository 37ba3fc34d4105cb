"""A running worker and beat log what changed, not that they are alive: Celery's per-task INFO lines
(received, succeeded, beat's "Sending due task") came three a second and buried the admin password
ensure_admin prints once (issue 11). Warnings still pass."""

import logging
import time

import pytest
import redis as redis_lib

from lbpanel.celery import CeleryChatter
from probes import claims
from probes.tests.conftest import QUEUE, REDIS_URL
from tests.celery_process import CeleryProcess, child_env

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def beat(database_url, worker, tmp_path):
    env = child_env(database_url, REDIS_URL, QUEUE)
    proc = CeleryProcess("beat", ["beat", "-s", str(tmp_path / "beat-schedule"), "--loglevel=INFO"], env, "beat: Starting")
    yield proc.wait_ready()
    # Pause probing first so a tick already queued starts no round after beat is gone.
    redis_lib.Redis.from_url(REDIS_URL).set("lb:probe:active", "0")
    proc.stop()


def test_ticks_and_rounds_run_without_a_line_each(probes, probe_settings, lb_redis, worker, beat):
    seen = len(worker.process.lines)
    deadline = time.monotonic() + 15
    while int(lb_redis.get(claims.ROUND_ID_KEY) or 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert int(lb_redis.get(claims.ROUND_ID_KEY) or 0) >= 3, "beat's ticks started no rounds:\n" + beat.log(-20)
    worker_lines = worker.process.lines[seen:]
    assert not [line for line in worker_lines if "succeeded in" in line or "Received task" in line], worker.log()
    assert not [line for line in beat.lines if "Sending due task" in line], beat.log()
    # The tick that found lb:table gone (lb_redis emptied it) said so: warnings are not chatter.
    assert any("lb:table was missing from Redis" in line for line in worker_lines), "\n".join(worker_lines)


@pytest.mark.parametrize("level, shown", [(logging.INFO, False), (logging.DEBUG, True)])
def test_the_chatter_is_debug(level, shown):
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        record = logging.LogRecord(
            "celery.beat", logging.INFO, __file__, 1, "Scheduler: Sending due task %s (%s)", ("a", "b"), None
        )
        assert CeleryChatter().filter(record) is shown and record.levelname == "DEBUG"
        failure = logging.LogRecord("celery.app.trace", logging.ERROR, __file__, 1, "Task %(name)s raised", (), None)
        assert CeleryChatter().filter(failure) is True
    finally:
        root.setLevel(before)
