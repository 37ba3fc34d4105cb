"""Probe tests run against the real thing: a Celery worker process on the test database,
the test Redis, and a SIP responder on 127.0.0.1 ports from LBPANEL_TEST_PORT_BASE."""

import itertools
import json
import os
import time

import pytest
import redis as redis_lib
from celery import Celery

from probes.tests.responder import Responder
from tests.celery_process import CeleryProcess, child_database_url, child_env
from tests.ports import is_free

# The same default as the root conftest's: tests never use the Redis db a running lbpanel uses.
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 23000)
QUEUE = f"probes-test-{os.getpid()}"
TASK_TIMEOUT = 15

_ports = itertools.count(PORT_BASE + 100)  # the first hundred are left to the bench


def free_port():
    for _ in range(500):
        port = next(_ports)
        if is_free(port):
            return port
    raise RuntimeError(f"no free port from LBPANEL_TEST_PORT_BASE={PORT_BASE}")


class Worker:
    """A `celery -A lbpanel worker` child on the test database, consuming `queues`."""

    running = []  # every live worker, so each test can wait for all of them to be idle

    def __init__(self, name, queues, database_url, extra=()):
        self.name, self.queues = name, queues
        self.node = f"{name}-{os.getpid()}@localhost"
        args = [
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "-Q",
            ",".join(queues),
            "-n",
            self.node,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            *extra,
        ]
        self.process = CeleryProcess(name, args, child_env(database_url, REDIS_URL, QUEUE), " ready.")

    def wait_ready(self):
        self.process.wait_ready()
        Worker.running.append(self)
        return self

    def wait_idle(self, app, timeout=15):
        """Until no task runs or waits in this worker: a task still recording when the
        test's database flush starts would deadlock with it (row locks vs TRUNCATE)."""
        deadline = time.monotonic() + timeout
        inspect = app.control.inspect(destination=[self.node], timeout=1.0, limit=1)
        queues = redis_lib.Redis.from_url(REDIS_URL)
        try:
            while time.monotonic() < deadline:
                # The queues first: a message taken from them after this shows as reserved.
                if any(queues.llen(q) for q in self.queues):
                    time.sleep(0.02)
                    continue
                active, reserved = inspect.active() or {}, inspect.reserved() or {}
                if self.node in active and not active[self.node] and not reserved.get(self.node):
                    return
        finally:
            queues.close()
        raise RuntimeError(f"worker {self.name} still busy after {timeout} s")

    def stop(self):
        if self in Worker.running:
            Worker.running.remove(self)
        self.process.stop()

    def log(self):
        return self.process.log()


@pytest.fixture(scope="session")
def database_url(django_db_setup, django_db_blocker):
    return child_database_url(django_db_blocker, "probe tests share the test database with a worker process")


@pytest.fixture(scope="session")
def worker(database_url):
    """One worker for the whole session, consuming the shared queue and its own."""
    w = Worker("probes-a", [QUEUE, QUEUE + ".a"], database_url).wait_ready()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def celery_client():
    app = Celery("probes-tests", broker=REDIS_URL, backend=REDIS_URL)
    app.conf.task_default_queue = QUEUE
    app.conf.broker_connection_retry_on_startup = True
    yield app
    app.close()


@pytest.fixture
def lb_redis(settings):
    """The test Redis with every lb:* key gone (the broker's keys stay: the worker uses them)."""
    settings.REDIS_URL = REDIS_URL
    client = redis_lib.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = list(client.scan_iter("lb:*", count=1000))
    if keys:
        client.delete(*keys)
    yield client
    client.close()


@pytest.fixture
def responder():
    """Four servers on one responder: `port` and `ports[1:]` (a server is an endpoint, so rows
    meant to be probed apart need ports of their own)."""
    r = Responder(free_port(), ("udp", "tcp"), extra_ports=[free_port() for _ in range(3)]).start()
    yield r
    r.stop()


@pytest.fixture
def probes(worker, celery_client, lb_redis):
    """Run rounds and probes through the real worker; at the end, wait for it to be idle."""
    yield Probes(worker, celery_client, lb_redis)
    for w in list(Worker.running):
        w.wait_idle(celery_client)


class Probes:
    def __init__(self, worker, app, redis):
        self.worker, self.app, self.redis = worker, app, redis

    def _call(self, name, args, queue):
        try:
            return self.app.send_task(name, args=args, queue=queue).get(timeout=TASK_TIMEOUT)
        except Exception:
            print(self.worker.log()[-5000:])
            raise

    def round(self, round_id=None, queue=QUEUE + ".a"):
        return self._call("probes.run_round", [round_id], queue)

    def send_round(self, round_id, queue):
        return self.app.send_task("probes.run_round", args=[round_id], queue=queue)

    def probe_now(self, destination_id, reason, queue=QUEUE + ".a"):
        return self.app.send_task("probes.probe_now", args=[destination_id, reason], queue=queue)

    def health(self, destination_id):
        raw = self.redis.hget("lb:health", str(destination_id))
        return json.loads(raw) if raw else None


class EventLog:
    """lb:events as a proxy sees it. `drain()` returns everything published so far, exactly:
    it publishes a marker and reads up to it, as one channel delivers in publish order."""

    def __init__(self, client):
        self.client = client
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe("lb:events")
        self._wait_subscribed()

    def _wait_subscribed(self):
        deadline = time.monotonic() + 5
        while not self.pubsub.subscribed and time.monotonic() < deadline:
            self.pubsub.get_message(timeout=0.1)

    def drain(self, timeout=5):
        marker = json.dumps({"type": "test-marker", "n": time.monotonic_ns()})
        self.client.publish("lb:events", marker)
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                continue
            if message["data"] == marker:
                return out
            out.append(json.loads(message["data"]))
        raise AssertionError("lb:events marker never came back")

    def wait_for(self, predicate, timeout):
        """The first event that matches, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None:
                event = json.loads(message["data"])
                if predicate(event):
                    return event
        return None

    def close(self):
        self.pubsub.close()


@pytest.fixture
def events(lb_redis):
    log = EventLog(lb_redis)
    yield log
    log.close()


@pytest.fixture
def probe_settings(transactional_db):
    """Short timers so a module takes seconds: 200 ms timeout, 1 s interval, 3 down, 1 up."""
    from dispatcher.models import ProbeSettings

    settings = ProbeSettings.load()
    settings.ping_interval = 1
    settings.ping_timeout_ms = 200
    settings.probing_threshold = 3
    settings.inactive_threshold = 1
    settings.ping_reply_codes = ""
    settings.probing_mode = 1
    settings.save()
    return settings


@pytest.fixture
def make_destination(transactional_db):
    from dispatcher.models import Destination, DispatcherSet

    dset = {}

    def make(uri, **fields):
        if "127.0.0.1" not in uri:
            raise ValueError(f"probe tests only probe 127.0.0.1, not {uri!r}")
        if "set" not in dset:
            dset["set"] = DispatcherSet.objects.create(setid=1, name="probes")
        return Destination.objects.create(dset=dset["set"], uri=uri, **fields)

    return make
