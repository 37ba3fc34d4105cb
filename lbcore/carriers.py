"""Carriers: what a call's outcome counts as, and how several proxies' carrier figures add up.

A source rule is a carrier (contract.carrier_name); calls from no rule's network are "other". Each
proxy counts, per carrier, every dispatched INVITE at the final response it sends the caller, since
the proxy process started, and publishes them in its heartbeat (contract.encode_node `carriers`).
The shape of one carrier there:

    {"calls": n, "answered": n, "canceled": n, "redirected": n,
     "failed": {"4xx": n, "5xx": n, "6xx": n, "timeout": n},
     "cps": float,                      # new INVITEs per second over the last 10 s
     "setup_buckets": [n, ...],         # calls by setup time, SETUP_EDGES (+ one past the last)
     "recent": {"calls": n, "answered": n, "failed": n}}   # the last RECENT_SECONDS only

calls = answered + canceled + redirected + every failure class. Setup time is from the INVITE's
arrival to the final response sent (the 2xx for an answered call); a canceled call is not in it,
its length being the caller's choice. Fixed buckets, the same on every node, so the panel adds
nodes' histograms bucket by bucket and takes quantiles from the sum. A quantile is the bucket it falls
in (`quantile`), never a point interpolated inside it.

Counted at the final response, so calls still ringing are in no figure but `cps`. An INVITE refused
statelessly for overload (Router.shed) is a call failed 5xx with no setup time.
"""

import bisect
from typing import NamedTuple

FAILURE_CLASSES = ("4xx", "5xx", "6xx", "timeout")
ANSWERED, CANCELED, REDIRECTED = "answered", "canceled", "redirected"

# Seconds. Upper bounds of each bucket; one more bucket holds everything slower than the last.
SETUP_EDGES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120)
SETUP_QUANTILES = (0.5, 0.95)

# The recent window, for alerts that should say "now", not "since the proxy started": ring buckets.
RECENT_BUCKET_SECONDS = 30
RECENT_BUCKETS = 10
RECENT_SECONDS = RECENT_BUCKET_SECONDS * RECENT_BUCKETS


def outcome(code):
    """What a final response code sent to the caller counts as: answered, canceled, redirected or a
    failure class. 408 (ours when no server answered in time, or a server's) is "timeout"."""
    if code < 300:
        return ANSWERED
    if code < 400:
        return REDIRECTED
    if code == 487:
        return CANCELED
    if code == 408:
        return "timeout"
    if code < 500:
        return "4xx"
    if code < 600:
        return "5xx"
    return "6xx"


def setup_bucket(seconds):
    """The histogram slot of a setup time: the first edge not below it, past the last edge the overflow."""
    return bisect.bisect_left(SETUP_EDGES, seconds)


def empty_figures():
    return {
        "calls": 0,
        ANSWERED: 0,
        CANCELED: 0,
        REDIRECTED: 0,
        "failed": dict.fromkeys(FAILURE_CLASSES, 0),
        "cps": 0.0,
        "setup_buckets": [0] * (len(SETUP_EDGES) + 1),
        "recent": {"calls": 0, "answered": 0, "failed": 0},
    }


def _int(v):
    try:
        return max(0, int(v))
    except (TypeError, ValueError):
        return 0


def add_figures(into, doc, *, current=True):
    """Add one node's figures for a carrier (`doc`, as published) into `into` (empty_figures()).
    Junk from Redis counts as 0. `current` False: a node that stopped reporting, whose cps and recent
    window describe a moment gone by, so only its cumulative counts are added."""
    if not isinstance(doc, dict):
        return into
    for k in ("calls", ANSWERED, CANCELED, REDIRECTED):
        into[k] += _int(doc.get(k))
    failed = doc.get("failed") if isinstance(doc.get("failed"), dict) else {}
    for cls in FAILURE_CLASSES:
        into["failed"][cls] += _int(failed.get(cls))
    buckets = doc.get("setup_buckets")
    # a node built with other edges cannot be added bucket by bucket: left out of the quantiles
    if isinstance(buckets, list) and len(buckets) == len(into["setup_buckets"]):
        for i, n in enumerate(buckets):
            into["setup_buckets"][i] += _int(n)
    if current:
        try:
            into["cps"] += max(0.0, float(doc.get("cps") or 0.0))
        except (TypeError, ValueError):
            pass
        recent = doc.get("recent") if isinstance(doc.get("recent"), dict) else {}
        for k in ("calls", "answered", "failed"):
            into["recent"][k] += _int(recent.get(k))
    return into


def failures(figures):
    return sum(figures["failed"].values())


def answer_rate(answered, calls):
    """answered / calls, None when there were no calls (never a 0 % that means nothing)."""
    return answered / calls if calls else None


class SetupBucket(NamedTuple):
    """Where a setup-time quantile lies, as far as a histogram knows: above `low` and at most `high`
    (seconds), `high` None past the last edge. A point inside the bucket would be invented: 100 calls
    of 2-4 ms are "at most 50 ms", never "25 ms"."""

    low: float
    high: float | None


def quantile(buckets, q):
    """The bucket that holds the q-quantile of a setup histogram (SetupBucket); None with no calls.

    Only the bucket is known: no interpolation inside it (Prometheus' histogram_quantile would say
    25 ms for calls that all took 3 ms). Every reader (the Carriers page, the API, /metrics) takes
    its figure from here: the page shows the bucket, the API and /metrics its upper bound."""
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            return _bucket(i)
        seen += n
    return _bucket(len(SETUP_EDGES))


def _bucket(i):
    low = float(SETUP_EDGES[i - 1]) if i else 0.0
    return SetupBucket(low, float(SETUP_EDGES[i]) if i < len(SETUP_EDGES) else None)
