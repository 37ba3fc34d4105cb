"""`manage.py runproxy`: the SIP proxy, plus the Celery hook that probes a suspect at once."""

import logging
import threading

from django.core.management.base import BaseCommand, CommandError

from dispatcher.redis_client import redis_target
from lbpanel.celery import app
from proxy import cli

log = logging.getLogger("proxy")


def send_probe_now(destination_id, reason):
    app.send_task("probes.probe_now", args=[destination_id, reason])


class ProbeNowSender:
    """Asks the prober to check a destination the proxy just marked suspect.

    The event loop only notes the destination; one thread sends. A broker publish blocks (and
    retries while the broker is away), and a thread per mark piled threads up exactly when
    servers fail. Marks of one server already waiting to be sent become one task: probe_now
    probes the whole server (every row of it), and the proxy marks every row of a server at
    once, so a task per row would send the same OPTIONS once per set.
    """

    def __init__(self, send=send_probe_now):
        self._send = send
        self._pending = {}  # server (or, in a table without servers, destination) -> (destination id, latest reason)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def __call__(self, dest, health):
        with self._lock:
            key = ("server", dest.server_id) if getattr(dest, "server_id", None) is not None else ("dest", dest.id)
            self._pending[key] = (dest.id, health.reason)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="probe-now-sender", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self):
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, {}
            for destination_id, reason in batch.values():
                try:
                    self._send(destination_id, reason)
                except Exception as exc:  # noqa: BLE001 (the broker may be down, however it fails; the mark stands anyway)
                    log.warning("probe_now for destination %s not sent: %s", destination_id, exc)


class Command(BaseCommand):
    help = "Run the SIP load-balancing proxy (reads lb:table from Redis)."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            listen = cli.listen_specs(options["listen"])
            advertise = cli.advertise(options["advertise"])
            tls = cli.tls_config(options, listen)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        cli.setup_logging(options["log_level"])
        try:
            redis = cli.redis_target(
                options["redis_url"], options["redis_sentinels"], options["redis_sentinel_master"], redis_target()
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        cli.run(
            listen,
            redis,
            cli.node_name(options["node_name"]),
            suspect_hooks=(ProbeNowSender(),),
            advertise=advertise,
            processes=options["processes"],
            tls=tls,
            steering=options["steering"],
        )
