"""Builds the routing table from PostgreSQL and publishes it to Redis, as lbcore/contract.py defines."""

import hashlib
import hmac
import json
import logging
import time

from django.conf import settings as django_settings
from django.db import DatabaseError

from dispatcher.models import Destination, DispatcherSet, ProxySettings, SourceRule, TableRevision
from dispatcher.redis_client import get_redis
from lbcore import contract

log = logging.getLogger(__name__)

# The web side's own key (the proxy never reads it): which database revision lb:table was built
# from, JSON {"revision": n, "version": v, "at": epoch}. See dispatcher/publication.py.
PUBLISHED_KEY = "lb:table:published"


def destination_doc(dest, setid):
    uri = dest.parsed_uri
    return {
        "id": dest.id,
        "setid": setid,
        "uri": dest.uri,
        "host": uri.host,
        "port": uri.effective_port,
        "transport": uri.transport,
        "priority": dest.priority,
        "weight": dest.weight,
        "rweight": dest.rweight,
        "duid": dest.duid,
        "maxload": dest.maxload,
        "attrs": dest.attrs,
        "admin_state": dest.admin_state,
        "probing": dest.probing,
        "server_id": dest.server_id,
    }


def dialog_secret():
    """The key every proxy signs its Record-Route with (see proxy/core.py dialog_sig).

    Derived from SECRET_KEY, which every web node already shares, so it is the same on every
    publish and after any restart: dialogs keep routing through any node of the cluster.
    """
    return hmac.new(django_settings.SECRET_KEY.encode(), b"lbpanel.sip.record-route", hashlib.sha256).hexdigest()


def build_table_parts():
    sets = []
    by_set = {}
    for dest in Destination.objects.order_by("-priority", "id"):
        by_set.setdefault(dest.dset_id, []).append(dest)
    for dset in DispatcherSet.objects.all():
        sets.append(
            {
                "setid": dset.setid,
                "name": dset.name,
                "algorithm": dset.algorithm,
                "failover_codes": dset.failover_code_list,
                "load_mode": dset.load_mode,
                "destinations": [destination_doc(d, dset.setid) for d in by_set.get(dset.id, [])],
            }
        )
    rules = [
        {"network": r.network, "setid": r.dset.setid, "carrier": contract.carrier_name(r.network, r.description)}
        for r in SourceRule.objects.select_related("dset")
    ]
    proxy = ProxySettings.load()
    settings = {
        "default_set": proxy.default_set.setid if proxy.default_set else _first_setid(sets),
        "fr_timer_ms": proxy.fr_timer_ms,
        "fr_inv_timer_ms": proxy.fr_inv_timer_ms,
        "trying_timeout_ms": proxy.trying_timeout_ms,
        "suspect_hold_ms": proxy.suspect_hold_ms,
        "trusted_networks": proxy.trusted_network_list,
        "server_header": proxy.server_header,
        "max_pending_invites": proxy.max_pending_invites,
        "overload_lag_ms": proxy.overload_lag_ms,
        "retry_after_s": proxy.retry_after_s,
        "dialog_timeout_s": proxy.dialog_timeout_s,
        "tcp_idle_timeout_s": proxy.tcp_idle_timeout_s,
        "tcp_message_timeout_ms": proxy.tcp_message_timeout_ms,
        "tcp_max_connections": proxy.tcp_max_connections,
        "tcp_max_per_ip": proxy.tcp_max_per_ip,
        "max_transactions": proxy.max_transactions,
        "max_transactions_per_source": proxy.max_transactions_per_source,
        "hep_destination": proxy.hep_destination.strip(),
        "hep_capture_id": proxy.hep_capture_id,
        "call_log_retention_s": proxy.call_log_retention_s,
        "call_log_max": proxy.call_log_max,
        "dialog_secret": dialog_secret(),
    }
    return sets, rules, settings


def _first_setid(sets):
    # The seed's config sends everything that is not from a carrier to set 1.
    return sets[0]["setid"] if sets else None


def wanted_revision():
    return TableRevision.objects.filter(pk=1).values_list("number", flat=True).first() or 0


def publish_table():
    """Write the whole table under a new version and tell every proxy. Returns the version.

    Raises RedisError when Redis does not take it; the caller decides whether to retry.
    """
    # Read before building: a change committed meanwhile makes this publish look older than it is
    # (one extra publish by the beat), never newer.
    revision = wanted_revision()
    sets, rules, settings = build_table_parts()
    r = get_redis()
    version = r.incr(contract.TABLE_VERSION_KEY)
    now = time.time()
    payload = contract.encode_table(version, sets, rules, settings, published_at=now)
    pipe = r.pipeline(transaction=True)
    pipe.set(contract.TABLE_KEY, payload)
    pipe.set(PUBLISHED_KEY, json.dumps({"revision": revision, "version": version, "at": now}))
    pipe.publish(contract.EVENTS_CHANNEL, contract.table_event(version))
    pipe.execute()
    log.info("published table version=%s revision=%s sets=%d", version, revision, len(sets))
    try:
        TableRevision.objects.filter(pk=1, number__lte=revision, failing_since__isnull=False).update(
            publish_error="", failing_since=None
        )
    except DatabaseError as exc:
        log.warning("published table version=%s but could not clear the failure record: %s", version, exc)
    return version


def publish_health(destination_id, health):
    r = get_redis()
    pipe = r.pipeline(transaction=True)
    pipe.hset(contract.HEALTH_KEY, str(destination_id), contract.encode_health(health))
    pipe.publish(contract.EVENTS_CHANNEL, contract.health_event(destination_id))
    pipe.execute()


def store_health(destination_id, health):
    """A probe result that changes no state: the hash only, no event."""
    get_redis().hset(contract.HEALTH_KEY, str(destination_id), contract.encode_health(health))


def read_health():
    raw = get_redis().hgetall(contract.HEALTH_KEY)
    return {int(k): contract.decode_health(v) for k, v in raw.items()}
