"""The issue's "done when": a real Celery worker and beat, a SIP responder playing two Asterisk boxes,
one of them killed and revived. The webhook receiver and the SMTP server each get exactly one "down"
and one "up" for the killed server, also across a restart of the worker and several evaluations."""

import os

import pytest

from dispatcher.alerts.models import AlertMemory, AlertSettings
from dispatcher.alerts.tests.conftest import about, mails_about
from probes.tests.conftest import QUEUE, REDIS_URL
from probes.tests.responder import SILENT
from tests.alert_receivers import SmtpReceiver, WebhookReceiver
from tests.celery_process import CeleryProcess, child_env

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]

ALERT_QUEUE = QUEUE + ".alerts"  # not the session worker's: it has no mail settings
PANEL_URL = "http://panel.example.test:8000"
WAIT = 90  # generous bound for a loaded machine; every wait ends as soon as what it awaits happens


@pytest.fixture
def receivers():
    webhook, smtp = WebhookReceiver().start(), SmtpReceiver().start()
    yield webhook, smtp
    webhook.stop()
    smtp.stop()


@pytest.fixture
def alerting_env(database_url, receivers):
    _, smtp = receivers
    env = child_env(database_url, REDIS_URL, ALERT_QUEUE)
    env.update(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        PANEL_URL=PANEL_URL,
        LBPANEL_ALERT_INTERVAL="1",
        DEFAULT_FROM_EMAIL="lbpanel@example.test",
    )
    return env


class Processes:
    def __init__(self, env, tmp_path):
        self.env, self.tmp_path, self.worker, self.beat = env, tmp_path, None, None

    def start_worker(self):
        args = ["worker", "--pool=threads", "--concurrency=2", "-Q", ALERT_QUEUE, "-n", f"alerts-{os.getpid()}@localhost"]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
        self.worker = CeleryProcess("alerts-worker", args, self.env, " ready.").wait_ready()

    def start_beat(self):
        args = ["beat", "-s", str(self.tmp_path / "beat-schedule"), "--loglevel=INFO"]
        self.beat = CeleryProcess("alerts-beat", args, self.env, "beat: Starting").wait_ready()

    def stop(self):
        # beat first, so nothing new is queued; a worker's SIGTERM finishes the task it runs
        for proc in (self.beat, self.worker):
            if proc is not None:
                proc.stop()


@pytest.fixture
def processes(alerting_env, tmp_path, lb_redis):
    procs = Processes(alerting_env, tmp_path)
    yield procs
    procs.stop()
    lb_redis.delete(ALERT_QUEUE)


def _evaluations():
    return AlertMemory.objects.filter(pk=1).values_list("evaluations", flat=True).first() or 0


def _wait_evaluations(n, procs):
    """Until the engine has run `n` more times (it counts them in AlertMemory)."""
    import time

    start = _evaluations()
    deadline = time.monotonic() + WAIT
    while _evaluations() < start + n:
        assert time.monotonic() < deadline, f"the engine ran {_evaluations() - start} of {n} times:\n{procs.worker.log(-30)}"
        time.sleep(0.2)


def test_a_killed_server_is_told_down_once_and_up_once_on_each_channel(
    receivers, processes, responder, probe_settings, make_destination, lb_redis
):
    webhook, smtp = receivers
    killed = make_destination(f"sip:127.0.0.1:{responder.port}", duid="ast1")
    make_destination(f"sip:127.0.0.1:{responder.ports[1]}", duid="ast2")
    AlertSettings.objects.update_or_create(pk=1, defaults={"webhook_url": webhook.url, "email_recipients": "ops@example.test"})
    key = f"server:{killed.server_id}:down"

    processes.start_worker()
    processes.start_beat()
    _wait_evaluations(2, processes)
    assert not about(key, "firing")(webhook.bodies)

    responder.answer(SILENT, uri=killed.uri)
    [down] = webhook.inbox.wait_for(about(key, "firing"), WAIT, f"a webhook 'down' for {key}")
    assert down["title"] == "Server ast1 is down" and down["link"] == f"{PANEL_URL}/#server-{killed.server_id}"
    smtp.inbox.wait_for(mails_about("[FIRING] Server ast1 is down"), WAIT, "an e-mail 'down' for ast1")

    # A restarted worker remembers the episode: it does not tell it again.
    processes.worker.stop()
    processes.start_worker()
    _wait_evaluations(3, processes)

    responder.answer(200, uri=killed.uri)
    webhook.inbox.wait_for(about(key, "resolved"), WAIT, f"a webhook 'up' for {key}")
    smtp.inbox.wait_for(mails_about("[RESOLVED] Server ast1 is up"), WAIT, "an e-mail 'up' for ast1")
    _wait_evaluations(3, processes)

    assert len(about(key, "firing")(webhook.bodies)) == 1 and len(about(key, "resolved")(webhook.bodies)) == 1
    assert len(mails_about("Server ast1 is down")(smtp.messages)) == 1
    assert len(mails_about("Server ast1 is up")(smtp.messages)) == 1
    assert not about("set:1:unusable", "firing")(webhook.bodies)  # ast2 carried the set throughout
