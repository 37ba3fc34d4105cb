"""Beat ticks every second and a round starts when ping_interval has passed, by the
Redis clock: a changed interval applies without restarting beat or the worker,
and however many ticks arrive at once, one starts the round."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib

from probes import claims
from probes.tests.conftest import QUEUE, REDIS_URL
from tests.celery_process import CeleryProcess, child_env

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def beat(database_url, worker, tmp_path):
    env = child_env(database_url, REDIS_URL, QUEUE)
    proc = CeleryProcess("beat", ["beat", "-s", str(tmp_path / "beat-schedule"), "--loglevel=INFO"], env, "beat: Starting")
    yield proc
    # Pause probing first so a tick already queued starts no round after beat is gone.
    redis_lib.Redis.from_url(REDIS_URL).set("lb:probe:active", "0")
    proc.stop()


def probe_times(responder, uri):
    return [r.at for r in responder.received if r.uri == uri]


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


def test_beat_follows_a_new_interval_without_a_restart(probes, responder, probe_settings, make_destination, beat):
    dest = make_destination(f"sip:ast1@127.0.0.1:{responder.port}")
    assert responder.wait_for(lambda r: r.count(dest.uri) >= 3, timeout=10), "no rounds from beat"
    assert min(gaps(probe_times(responder, dest.uri))) >= 0.4

    probe_settings.ping_interval = 3
    probe_settings.save()
    seen = responder.count(dest.uri)
    assert responder.wait_for(lambda r: r.count(dest.uri) >= seen + 2, timeout=12)
    after = probe_times(responder, dest.uri)[seen - 1 :]
    assert min(gaps(after)) >= 2.3
    assert probes.health(dest.pk)["state"] == "up"


def test_one_tick_of_many_starts_the_round(lb_redis):
    with ThreadPoolExecutor(8) as pool:
        started = list(pool.map(lambda _: claims.start_round_if_due(lb_redis, 15), range(40)))
    assert len([r for r in started if r]) == 1
    assert claims.start_round_if_due(lb_redis, 15) is None


def test_no_round_starts_while_probing_is_paused(lb_redis, probe_settings):
    from probes.tasks import tick

    lb_redis.set("lb:probe:active", "0")
    assert tick() is None
    assert lb_redis.get("lb:probe:round:id") is None
