"""`manage.py runproxy`: the SIP proxy, plus the Celery hook that probes a suspect at once."""

import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from proxy import cli

log = logging.getLogger("proxy")


def probe_now_hook(dest, health):
    """Ask the prober to check a destination the proxy just marked suspect, off the event loop."""

    def send():
        try:
            from lbpanel.celery import app

            app.send_task("probes.probe_now", args=[dest.id, health.reason])
        except Exception as exc:  # the broker may be down; the mark stands anyway
            log.warning("probe_now for destination %s not sent: %s", dest.id, exc)

    threading.Thread(target=send, name=f"probe-now-{dest.id}", daemon=True).start()


class Command(BaseCommand):
    help = "Run the SIP load-balancing proxy (reads lb:table from Redis)."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            listen = cli.listen_specs(options["listen"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        cli.setup_logging(options["log_level"])
        redis_url = options["redis_url"] or settings.REDIS_URL
        cli.run(listen, redis_url, cli.node_name(options["node_name"]), suspect_hooks=(probe_now_hook,))
