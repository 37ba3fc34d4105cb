"""Active calls are sampled into lb:calls:<id> (once per interval, cluster-wide) and drawn on the detail page."""

import json
import time

import pytest

from dispatcher import live
from dispatcher.models import Destination, DispatcherSet
from lbcore import contract


@pytest.fixture
def dest(db):
    dset = DispatcherSet.objects.create(setid=1)
    return Destination.objects.create(dset=dset, uri="sip:127.0.0.1:5081", duid="ast1")


def report(redis, name, dest_id, active):
    redis.set(
        contract.node_key(name),
        contract.encode_node(
            name, table_version=1, started=0, pid=1, listen=[], totals={}, destinations={dest_id: {"active": active}}
        ),
        ex=contract.NODE_TTL_SECONDS,
    )


def test_it_samples_the_sum_over_proxies_once_per_interval(redis, dest):
    report(redis, "a", dest.pk, 7)
    report(redis, "b", dest.pk, 5)
    assert live.record_calls_sample([dest.pk]) is True
    assert live.record_calls_sample([dest.pk]) is False  # a second tick inside the interval
    assert [s["active"] for s in live.calls_samples(dest.pk)] == [12]
    assert redis.ttl(contract.CALLS_SAMPLE_CLAIM_KEY) <= contract.CALLS_SAMPLE_SECONDS


def test_no_proxy_reporting_leaves_a_gap_not_a_zero(redis, dest):
    assert live.record_calls_sample([dest.pk]) is False
    assert live.calls_samples(dest.pk) == []


def test_the_detail_page_draws_the_history(client, viewer, redis, dest):
    now = time.time()
    redis.lpush(contract.calls_key(dest.pk), json.dumps({"t": now - 20, "active": 3}), json.dumps({"t": now - 10, "active": 9}))
    client.force_login(viewer)
    response = client.get(f"/destinations/{dest.pk}/")
    assert response.status_code == 200
    assert b'data-testid="calls-history-chart"' in response.content and b"(max 9" in response.content
    assert response.content.count(b'class="tick"') in (6, 7)  # a time axis: a tick every 10 minutes
