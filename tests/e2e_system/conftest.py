"""The whole system as production runs it, on 127.0.0.1: PostgreSQL (the test database), Redis,
a Celery worker AND beat process, `manage.py runproxy`, and three SIPp servers (ast1..3).

Nothing is driven by hand: beat ticks, the worker probes, the proxy routes from what Redis says.
The worker and beat live for the module (they start in seconds, not milliseconds); everything
else is started per test on a fresh table. Between tests probing is paused and the worker is
waited idle, because a probe recording a state change while the test database is truncated
would deadlock with the TRUNCATE.

Ports come from LBPANEL_TEST_PORT_BASE (default 28000, clear of tests/e2e_proxy's 25000 blocks
and probes' 23000): each test takes a fresh block of 20.
"""

import itertools
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import redis as redis_lib
from celery import Celery

from tests.celery_process import CeleryProcess, child_database_url, child_env
from tests.e2e_proxy.conftest import Cluster, Ports

# The same default as the root conftest's, so the test process and the children share one Redis.
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 28000)
# The production queue name: beat's ticks and the proxy's probe_now go to the default queue.
QUEUE = "lbpanel"
NODE_NAME = "system"

# Short timers so a down server is seen in a few seconds (Kamailio's defaults would take 45 s).
PROBE_SETTINGS = {"ping_interval": 1, "probing_threshold": 2, "inactive_threshold": 1, "ping_timeout_ms": 300, "probing_mode": 1}
WEIGHT = 10  # equal weights: algorithm 4 is plain round-robin, a third of the calls each

_blocks = itertools.count()


# --- processes -----------------------------------------------------------------------


class Celeries:
    """The worker and beat of the module, and a client app to ask the worker whether it is idle."""

    def __init__(self, worker, beat, app):
        self.worker, self.beat, self.app = worker, beat, app
        self.node = worker.node

    def wait_idle(self, redis_client, timeout=20):
        """Until no task runs, waits or is queued for the worker (bounded)."""
        inspect = self.app.control.inspect(destination=[self.node], timeout=1.0, limit=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if redis_client.llen(QUEUE):
                time.sleep(0.05)
                continue
            active, reserved = inspect.active() or {}, inspect.reserved() or {}
            if self.node in active and not active[self.node] and not reserved.get(self.node):
                return
        raise RuntimeError(f"celery worker still busy after {timeout} s:\n" + self.worker.log(-40))

    def report(self):
        return f"--- worker log tail ---\n{self.worker.log(-60)}\n--- beat log tail ---\n{self.beat.log(-20)}"


@pytest.fixture(scope="module")
def celery_extra_env():
    """More environment for the worker and beat; a module overrides it (e.g. mail settings for alerts)."""
    return {}


@pytest.fixture(scope="module")
def celeries(django_db_setup, django_db_blocker, tmp_path_factory, celery_extra_env):
    if shutil.which(os.environ.get("SIPP", "sipp")) is None:
        pytest.fail("sipp is not installed: apt-get install -y sip-tester (make test-deps)")
    env = child_env(
        child_database_url(django_db_blocker, "the system test shares its database with a Celery worker"), REDIS_URL, QUEUE
    )
    env.update(celery_extra_env)
    client = redis_lib.Redis.from_url(REDIS_URL)
    # Only what this module will consume: probe_now messages other tests' proxies left unconsumed.
    client.delete(QUEUE)
    _clear_lb_keys(client)
    node = f"system-{os.getpid()}@localhost"
    worker = CeleryProcess(
        "worker",
        [
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "-Q",
            QUEUE,
            "-n",
            node,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],
        env,
        " ready.",
    )
    worker.node = node
    beat = None
    app = Celery("system-tests", broker=REDIS_URL, backend=REDIS_URL)
    app.conf.broker_connection_retry_on_startup = True
    try:
        worker.wait_ready()
        schedule = tmp_path_factory.mktemp("beat") / "celerybeat-schedule"
        beat = CeleryProcess("beat", ["beat", "-s", str(schedule), "--loglevel", "INFO"], env, "beat: Starting").wait_ready()
        yield Celeries(worker, beat, app)
    finally:
        if beat is not None:
            beat.stop()
        worker.stop()
        app.close()
        client.close()


def _clear_lb_keys(client):
    """Every lb:* key (table, health, probe streaks and claims, node heartbeats); the broker's stay."""
    keys = list(client.scan_iter("lb:*", count=1000))
    if keys:
        client.delete(*keys)


# --- ports and the cluster ---------------------------------------------------------------


def dispatcher_list(ports):
    lines = ["# setid destination flags priority attrs"]
    for n in (1, 2, 3):
        lines.append(f"1 sip:127.0.0.1:{ports.ast[n]} 0 0 weight={WEIGHT};duid=ast{n}")
    return "\n".join(lines) + "\n"


class System(Cluster):
    """tests/e2e_proxy's Cluster with the Celery side running: its own table, its own queue."""

    def __init__(self, tmp_path, redis, ports, celeries):
        super().__init__(tmp_path, redis, REDIS_URL, ports)
        self.celeries = celeries

    # The proxy's probe_now hook sends through lbpanel.celery: same Redis, same queue as the worker.
    proxy_env = {"CELERY_TASK_DEFAULT_QUEUE": QUEUE}

    def table_text(self):
        return dispatcher_list(self.ports)

    def start_proxy(self, node_name=NODE_NAME):
        return super().start_proxy(node_name)

    def restart_uas(self, n):
        """Start ast<n> again on the same port (a restarted Asterisk)."""
        return self.start_uas(n)

    def kill_uas_after_dump(self, n, deadline_s=5.0):
        """SIGKILL ast<n> right after SIPp wrote a counts row, so that row is what it had at death.

        Returns that row summed ({"INVITE_Recv": .., "BYE_Recv": ..}).
        """
        sipp = self.ast[n]
        path = sipp._file("counts.csv")
        rows = _row_count(path)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if _row_count(path) > rows:
                sipp.kill()
                return sipp.counts()
            time.sleep(0.002)
        raise AssertionError(f"ast{n} wrote no counts row within {deadline_s}s")

    # --- what ops see in Redis and PostgreSQL ----------------------------------------------
    def health(self, n):
        import json

        raw = self.redis.hget("lb:health", str(self.dests[n].id))
        return json.loads(raw) if raw else None

    def wait_health(self, wanted, deadline_s=15.0):
        """Until lb:health shows each ast<n> in `wanted` ({n: "up"}); returns every health doc."""
        end = time.monotonic() + deadline_s
        seen = {}
        while time.monotonic() < end:
            seen = {n: self.health(n) for n in wanted}
            if all(seen[n] is not None and seen[n]["state"] == state for n, state in wanted.items()):
                return seen
            time.sleep(0.05)
        raise AssertionError(
            f"lb:health never showed {wanted} within {deadline_s}s: {seen}\n" + self.celeries.report() + "\n" + self.report()
        )

    def dest_counters(self, n, node=None):
        """The proxy heartbeat's counters for ast<n> (zeros before its first INVITE)."""
        node = node or self.proxy.node(self.redis) or {}
        zero = {"active": 0, "invites": 0, "answered": 0, "failovers": 0}
        return {**zero, **(node.get("destinations") or {}).get(str(self.dests[n].id), {})}

    def heartbeat_after(self, t, deadline_s=5.0):
        """The first heartbeat written after epoch `t`: counters that include everything before t."""
        return self.proxy.wait_node(self.redis, lambda node: node["heartbeat"] > t, f"a heartbeat after {t:.3f}", deadline_s)

    def pause_probing(self):
        self.redis.set("lb:probe:active", "0")


def _row_count(path):
    if path is None or not Path(path).exists():
        return 0
    with open(path) as fh:
        return sum(1 for line in fh if line.strip())


@pytest.fixture
def system_redis(redis_url):
    assert redis_url == REDIS_URL, "the root conftest and this one must agree on the test Redis"
    client = redis_lib.Redis.from_url(REDIS_URL)
    _clear_lb_keys(client)
    yield client
    client.close()


@pytest.fixture
def uas_scenarios():
    """The SIPp scenario of each ast<n> that is not uas.xml; a module overrides it ({3: "uas_some_503.xml"})."""
    return {}


@pytest.fixture
def system(transactional_db, celeries, system_redis, tmp_path, uas_scenarios):
    """Fresh table with short probe settings, three UAS, the proxy; beat and worker already running.

    Teardown order matters: stop the SIP side, pause probing and wait for the worker to be idle,
    all before transactional_db truncates the tables (this fixture's teardown runs first).
    """
    from dispatcher.models import ProbeSettings
    from dispatcher.services import save_config

    settings = ProbeSettings.load()
    for key, value in PROBE_SETTINGS.items():
        setattr(settings, key, value)
    save_config(settings, reason="system test: short probe timers")
    made = System(tmp_path, system_redis, Ports(PORT_BASE, _blocks), celeries)
    try:
        for n in (1, 2, 3):
            made.start_uas(n, uas_scenarios.get(n, "uas.xml"))
        made.publish()
        made.start_proxy()
        yield made
    finally:
        made.close()
        made.pause_probing()
        celeries.wait_idle(system_redis)


# --- reading the panel's HTML ------------------------------------------------------------------


def dest_row(html, dest_id):
    """The dashboard row of one destination (partials/_destination_row.html)."""
    m = re.search(rf'<tr id="dest-{dest_id}".*?</tr>', html, re.S)
    assert m, f"no row dest-{dest_id} on the page:\n{html[:3000]}"
    return m.group(0)


def badge(row, testid):
    m = re.search(rf'<span class="badge (\w+)" data-testid="{testid}"[^>]*>([^<]*)</span>', row)
    assert m, f"no {testid} in row:\n{row}"
    return m.group(1), m.group(2).strip()


def row_active(row):
    m = re.search(r'<b data-testid="active">(\d+)</b>', row)
    return int(m.group(1)) if m else None


def node_row(html, name):
    """(badge colour, the node's table row) in the Proxies table, or None when it is not listed."""
    table = re.search(r'<table class="grid compact" data-testid="nodes">.*?</table>', html, re.S)
    if not table:
        return None
    for row in re.findall(r"<tr[^>]*>.*?</tr>", table.group(0), re.S):
        if f'<td class="mono">{name}</td>' in row:
            colour = re.search(r'<span class="badge (\w+)">[\d.]+s ago</span>', row)
            return (colour.group(1) if colour else None), row
    return None
