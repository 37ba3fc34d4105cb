"""Shared by the carriers' tests: the source rules of two carriers, and a proxy's carrier figures in Redis."""

import time

from dispatcher.models import SourceRule
from dispatcher.tests.panel_support import make_set, write_node
from lbcore import carriers as lc
from lbcore import contract


def two_carriers():
    """Carrier A (two networks) to set 2, Carrier B to set 2; set 1 the default."""
    make_set(1, "agents")
    two = make_set(2, "carriers")
    SourceRule.objects.create(network="203.0.113.10/32", dset=two, description="Carrier A")
    SourceRule.objects.create(network="203.0.113.11/32", dset=two, description="Carrier A")
    SourceRule.objects.create(network="198.51.100.0/24", dset=two, description="Carrier B")


def figures(calls=0, answered=0, failed=None, canceled=0, cps=0.0, setup=(), recent=None):
    """One carrier's figures as a proxy publishes them; `setup`: setup times in seconds."""
    f = lc.empty_figures()
    f.update(calls=calls, answered=answered, canceled=canceled, cps=cps)
    f["failed"].update(failed or {})
    for seconds in setup:
        f["setup_buckets"][lc.setup_bucket(seconds)] += 1
    f["recent"] = recent or {"calls": calls, "answered": answered, "failed": sum((failed or {}).values())}
    return f


def write_carriers(redis, name, carriers, *, heartbeat=None, started=None, previous=None, live=True):
    """A proxy's heartbeat with `carriers` (if `live`) and the record it keeps of them."""
    started = started or time.time() - 600
    if live:
        write_node(redis, name, heartbeat=heartbeat, carriers=carriers)
    redis.set(
        contract.node_carriers_key(name),
        contract.encode_node_carriers(name, started=started, carriers=carriers, written=heartbeat, previous=previous),
    )
