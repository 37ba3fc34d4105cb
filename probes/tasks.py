"""Celery tasks: the beat's tick, a probe round, and the proxy's probe_now (called by name)."""

import logging

from celery import shared_task

from dispatcher import live, publication, services
from dispatcher.models import Destination, ProbeSettings
from dispatcher.redis_client import get_redis
from lbcore import rules
from lbcore.contract import PING_ACTIVE_KEY, TABLE_KEY
from probes import claims, rounds

log = logging.getLogger(__name__)


@shared_task(name="probes.tick", ignore_result=True)
def tick():
    """Fired by beat every second; starts a round only when ping_interval has passed.

    Reading ProbeSettings here, not in the beat schedule, is what lets a new
    interval apply without restarting beat.
    """
    r = get_redis()
    ensure_table(r)
    live.record_calls_sample(Destination.objects.values_list("pk", flat=True))
    if rules.probing_paused(r.get(PING_ACTIVE_KEY)):
        return None
    settings = ProbeSettings.load()
    round_id = claims.start_round_if_due(r, settings.ping_interval)
    if round_id:
        # A round queued behind a stalled worker is stale once the next one is due.
        run_round.apply_async(args=[round_id], expires=settings.ping_interval)
    if settings.recovery_interval and rounds.down_destinations() and claims.start_recovery_if_due(r, settings.recovery_interval):
        recover.apply_async(expires=max(settings.recovery_interval, 2))
    return round_id


def ensure_table(r):
    """A Redis that restarted empty (or was flushed) gets the table back within a tick, and a
    change that committed while Redis refused the publish is published now.

    Proxies keep routing from their last copy meanwhile, but a proxy that starts now would
    find nothing, and the panel would show no table version.
    """
    if r.exists(TABLE_KEY):
        return publication.publish_if_pending(r) is not None
    version = services.republish()
    log.warning("lb:table was missing from Redis: republished the table as version %s", version)
    return True


@shared_task(name="probes.recover")
def recover():
    return rounds.run_recovery()


@shared_task(name="probes.run_round")
def run_round(round_id=None):
    return rounds.run_round(round_id)


@shared_task(name="probes.probe_now")
def probe_now(destination_id, reason=""):
    return rounds.probe_one(int(destination_id), reason)
