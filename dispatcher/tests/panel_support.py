"""Shared by the panel's tests: builders for a small cluster in PostgreSQL and the live keys a proxy or prober writes."""

import time

from dispatcher.choices import Algorithm
from dispatcher.models import Destination, DispatcherSet
from lbcore import contract


def make_set(setid=1, name="agents", algorithm=Algorithm.ROUND_ROBIN):
    return DispatcherSet.objects.create(setid=setid, name=name, algorithm=algorithm)


def make_destination(dset, n, **fields):
    fields.setdefault("weight", 50)
    return Destination.objects.create(dset=dset, uri=f"sip:127.0.0.1:{25080 + n}", duid=f"ast{n}", **fields)


def write_node(redis, name="proxy-a", *, destinations=None, table_version=1, heartbeat=None, totals=None, **more):
    """What a running proxy writes every second: heartbeat, applied table version, per-destination counters;
    `more`: the rest of encode_node's fields (table_applied_at, advertise, holds_address...)."""
    destinations = destinations or {}
    totals = totals or {
        "active": sum(d.get("active", 0) for d in destinations.values()),
        "invites": sum(d.get("invites", 0) for d in destinations.values()),
        "answered": 0,
        "failovers": 0,
        "sent_503": 0,
        "shed": 0,
    }
    redis.set(
        contract.node_key(name),
        contract.encode_node(
            name,
            table_version=table_version,
            started=time.time() - 600,
            pid=4242,
            listen=["udp:127.0.0.1:5060"],
            totals=totals,
            destinations=destinations,
            heartbeat=heartbeat,
            **more,
        ),
        ex=60,  # tests control staleness through `heartbeat`, not through expiry
    )


def write_health(redis, dest_id, state, *, rtt_ms=4.2, code=200, since=None, reason=""):
    """What the prober writes after a probe."""
    health = contract.Health(state=state, rtt_ms=rtt_ms, since=since or time.time() - 90, code=code, reason=reason)
    redis.hset(contract.HEALTH_KEY, str(dest_id), contract.encode_health(health))
