"""Redis Sentinel: the master is SIGKILLed under load and the replica takes over.

The proxy (runproxy with REDIS_SENTINELS) keeps routing from its table while no master answers,
then finds the new master through the sentinels: its heartbeat reappears there, and a state
change made after the failover reaches it. A Celery worker on the sentinel:// broker runs a task
before and after. Nothing is restarted or reconfigured by hand.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from celery import Celery

from lbcore.redistarget import RedisTarget
from tests.celery_process import CeleryProcess, child_database_url, child_env
from tests.e2e_proxy.proxyctl import ROOT

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

CALLS, RATE, HOLD_MS = 900, 50, 500  # 18 s of calls, about 25 up at a time
QUEUE = f"sentinel-test-{os.getpid()}"
# A failover takes down-after (1 s) + the vote + the promotion; the proxy's reconnect backoff adds up to 5 s.
FAILOVER_DEADLINE_S = 15


def _celery_app(target):
    app = Celery("sentinel-test", broker=target.celery_url(), backend=target.celery_url())
    app.conf.broker_transport_options = target.celery_transport_options()
    app.conf.result_backend_transport_options = target.celery_transport_options()
    app.conf.task_default_queue = QUEUE
    app.conf.broker_connection_retry_on_startup = True
    return app


def _worker(django_db_blocker, redis_url, sentinels):
    database_url = child_database_url(django_db_blocker, "the Sentinel test runs a Celery worker on the test database")
    env = {**child_env(database_url, redis_url, QUEUE), **sentinels.env()}
    args = ["worker", "--pool=solo", "-Q", QUEUE, "-n", f"{QUEUE}@localhost", "--without-gossip", "--without-mingle"]
    return CeleryProcess("sentinel-worker", [*args, "--without-heartbeat", "--loglevel=INFO"], env, " ready.")


def _proxy_check(cluster, proxy, redis_url, sentinels):
    args = ["proxy_check", "--listen", f"udp:127.0.0.1:{cluster.ports.proxy}", "--node-name", proxy.node_name]
    env = {**os.environ, **sentinels.env(), "REDIS_URL": redis_url}
    cmd = [sys.executable, str(ROOT / "manage.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


def _answered(counts):
    return sum(c.get("ACK_Recv", 0) for c in counts.values())


def test_calls_and_changes_survive_a_master_failover(cluster_factory, sentinels, redis, redis_url, django_db_blocker):
    from dispatcher.services import set_state

    worker = _worker(django_db_blocker, redis_url, sentinels)
    app = _celery_app(RedisTarget.build(redis_url, sentinels.env()["REDIS_SENTINELS"], sentinels.env()["REDIS_SENTINEL_MASTER"]))
    cluster = cluster_factory(start_proxy=False)
    try:
        cluster.proxy_env = sentinels.env()
        proxy = cluster.start_proxy()
        worker.wait_ready()
        assert app.send_task("celery.accumulate", args=[1]).get(timeout=20) == [1], worker.log(-30)

        uac = cluster.uac(calls=CALLS, rate=RATE, hold_ms=HOLD_MS, recv_timeout_ms=3000)
        at_kill = _answered(cluster.wait_uas(lambda c: _answered(c) >= 100, "100 calls answered"))
        killed_wall, killed = time.time(), time.monotonic()
        os.kill(sentinels.master.pid, signal.SIGKILL)
        sentinels.wait_failover(FAILOVER_DEADLINE_S)
        promoted = time.monotonic() - killed
        # SIPp dumps its counts every second: wait for a dump from after the promotion
        time.sleep(1.1)
        at_promotion = _answered({n: s.counts() for n, s in cluster.ast.items()})

        # Read from the new master itself: the replica's copy of an old heartbeat does not count.
        new_master = sentinels.direct(sentinels.replica_port)
        proxy.wait_node(new_master, lambda n: n["heartbeat"] > killed_wall + promoted, "a heartbeat after the failover", 15)
        back = time.monotonic() - killed

        # keepalived's check reads the heartbeat where the proxy writes it: the new master (REDIS_URL's is dead)
        check = _proxy_check(cluster, proxy, redis_url, sentinels)
        assert check.returncode == 0 and "heartbeat of e2e" in check.stdout, check.stdout + check.stderr

        set_state(cluster.dests[3], "inactive", reason="sentinel test: a change after the failover")
        version = int(new_master.get("lb:table:version"))
        node = proxy.wait_table(new_master, version, deadline_s=10)
        reached = node["table_applied_at"] - node["table_published_at"]  # published (after commit) to applied

        assert app.send_task("celery.accumulate", args=[2]).get(timeout=30) == [2], worker.log(-30)
        celery_after = time.monotonic() - killed

        uac.wait(60)
        stats = uac.stats()
        ok, failed = int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])
        print(
            f"\nsentinel failover: promoted {promoted:.1f}s after the kill, proxy heartbeat on the new master "
            f"{back:.1f}s after, change reached the proxy in {reached * 1000:.0f} ms, Celery task "
            f"{celery_after:.1f}s after; calls {ok} ok / {failed} failed of {CALLS}, {at_promotion - at_kill} answered between the kill and the promotion"
        )
        assert at_promotion > at_kill, "no call was answered while Redis had no master\n" + cluster.report(uac)
        # Routing never waits for Redis: a call may fail only by bad luck in timing, not by the outage.
        assert failed <= CALLS // 100, f"{failed} calls failed across the failover\n" + cluster.report(uac)
        assert ok + failed == CALLS, cluster.report(uac)
        assert reached < 1.0, f"the change took {reached:.3f} s to reach the proxy after the failover"
    finally:
        worker.stop()
        app.close()
