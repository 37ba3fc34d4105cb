"""What is live, read from Redis: proxy nodes, their counters summed per destination, health, RTT samples.

Active calls come from the dialog records' counts (lb:dialogcounts:<node>, every node's, live or
not: a dead node's calls are up until a live node takes them over, in one step), and from the
heartbeat only for a node that keeps no records (one from before them).

The panel, the API, /metrics and /healthz all read through here. A Redis that is away gives an empty
snapshot with `redis_error` set, never an exception in a page.
"""

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from django.utils import timezone
from redis.exceptions import RedisError

from dispatcher.redis_client import get_redis
from lbcore import contract, rules

STALE_AFTER_SECONDS = 3
NOBODY_REPORTING = "no proxy reporting; counts unknown"
REDIS_UNREADABLE = "Redis cannot be read; counts unknown"
# A round ends within its probe timeout of starting, and starts within a tick of being due:
# past interval + timeout + this, the next round is late, so the worker or beat has stopped.
ROUND_LATE_MARGIN_SECONDS = 2


@dataclass(frozen=True)
class NodeLoad:
    """A proxy's CPU load as the panel may state it: `figures` (lbcore.contract.node_load) and
    `level` (lbcore.rules.load_level: the worse of the process and its reader) are None when it
    cannot vouch for them, `why` says why. `cpu_level` and `reader_level` are each figure's own
    (reader_level None without a reader, or when the worker could not read it)."""

    figures: dict | None
    level: str | None
    why: str = ""
    cpu_level: str | None = None
    reader_level: str | None = None


def node_load(node, limit_pct):
    """`node`: a heartbeat document with its "age". A stale heartbeat's figure is from before it
    stopped: unknown, not its last value."""
    if node["age"] > STALE_AFTER_SECONDS:
        return NodeLoad(None, None, f"no heartbeat for {node['age']:.0f} s")
    figures = contract.node_load(node)
    if figures is None:
        return NodeLoad(None, None, "not reported: a proxy from before the load figure, or one started under a second ago")
    return NodeLoad(
        figures,
        rules.load_level(figures, limit_pct),
        cpu_level=rules.share_level(figures["cpu"], limit_pct),
        reader_level=rules.share_level(figures.get("reader_cpu"), limit_pct),
    )


@dataclass
class DestinationLive:
    active: int = 0
    invites: int = 0
    answered: int = 0
    failovers: int = 0
    cps: float = 0.0  # new calls per second now: over the last 10 s
    cps_1m: float = 0.0  # the same over the last minute
    # calls no live proxy vouches for (lbcore.rules.unvouched_calls): then `active` is not the count
    unvouched: list = field(default_factory=list)
    # False while no proxy has reported for STALE_AFTER_SECONDS: every figure here is from before
    # they stopped (or nothing at all), and none is said as current (LiveSnapshot.for_destination)
    reporting: bool = True
    not_reporting_why: str = ""  # why not, when not: nobody reporting, or Redis unreadable

    @property
    def active_known(self):
        """The active count, or None when no live proxy can vouch for it (never a 0 that may be false)."""
        return None if self.unvouched or not self.reporting else self.active

    @property
    def cps_known(self):
        """New calls per second now, None while no proxy reports (a proxy that stopped is not 0 calls a second)."""
        return round(self.cps, 3) if self.reporting else None

    @property
    def cps_1m_known(self):
        return round(self.cps_1m, 3) if self.reporting else None

    @property
    def unknown_reason(self):
        """'proxy lb1 restarted at 14:02 with 40 calls up; counts unknown', or ''."""
        if not self.reporting:
            return self.not_reporting_why or NOBODY_REPORTING
        return unvouched_text(self.unvouched)


@dataclass
class LiveSnapshot:
    nodes: list = field(default_factory=list)  # decoded node docs + "age" (seconds since heartbeat)
    destinations: dict = field(default_factory=dict)  # id -> DestinationLive, summed over live nodes
    health: dict = field(default_factory=dict)  # id -> lbcore.contract.Health
    table_version: int | None = None
    last_round: float | None = None  # epoch the last probe round finished (lb:probe:last_round)
    probing_paused: bool = False  # dispatcher.ping_active 0
    # node name -> {destination id: calls} its dialog records hold, live node or not (a dead
    # node's until a live one claims them): how the Proxies table names a node that stopped
    # reporting with calls up
    node_calls: dict = field(default_factory=dict)
    # destination id -> [lbcore.contract.decode_dns_warning docs], one per live proxy whose lookups of
    # its host name fail (lb:dnsfail:<node>)
    dns: dict = field(default_factory=dict)
    # the same from proxies that stopped reporting: what they last saw, nobody's word any more
    dns_unknown: dict = field(default_factory=dict)
    redis_error: str = ""
    taken_at: float = field(default_factory=time.time)

    @property
    def newest_heartbeat_age(self):
        return min((n["age"] for n in self.nodes), default=None)

    @property
    def stale(self):
        age = self.newest_heartbeat_age
        return age is None or age > STALE_AFTER_SECONDS

    def for_destination(self, destination_id):
        """Its figures summed over the nodes; marked not `reporting` while the snapshot is stale."""
        live = self.destinations.get(destination_id)
        if live is None:
            live = DestinationLive()
        if self.stale and live.reporting:
            live = replace(live, reporting=False, not_reporting_why=REDIS_UNREADABLE if self.redis_error else NOBODY_REPORTING)
        return live

    def totals(self, destination_ids=None):
        total = DestinationLive(reporting=not self.stale)
        for dest_id, live in self.destinations.items():
            if destination_ids is None or dest_id in destination_ids:
                total.active += live.active
                total.invites += live.invites
                total.answered += live.answered
                total.failovers += live.failovers
                total.cps += live.cps
                total.cps_1m += live.cps_1m
                total.unvouched += live.unvouched
        return total


def snapshot():
    """One round trip's worth of live state (a pipeline), summed over every node that has not expired."""
    snap = LiveSnapshot()
    try:
        r = get_redis()
        names = [k.decode() if isinstance(k, bytes) else k for k in r.scan_iter(match=contract.NODE_KEY_PREFIX + "*", count=500)]
        dns_keys = list(r.scan_iter(match=contract.DNS_KEY_PREFIX + "*", count=500))
        pipe = r.pipeline(transaction=False)
        for name in names:
            pipe.get(name)
        for key in dns_keys:
            pipe.hgetall(key)
        pipe.hgetall(contract.HEALTH_KEY)
        pipe.get(contract.TABLE_VERSION_KEY)
        pipe.get(contract.LAST_ROUND_KEY)
        pipe.get(contract.PING_ACTIVE_KEY)
        *docs, health_raw, version, last_round, ping_active = pipe.execute()
    except RedisError as exc:
        snap.redis_error = f"Redis is not reachable: {exc}"
        return snap
    node_docs, dns_docs = docs[: len(names)], docs[len(names) :]
    try:
        recorded = _dialog_counts(r)
    except RedisError as exc:
        snap.redis_error = f"Redis is not reachable: {exc}"
        return snap
    snap.node_calls = recorded
    now = time.time()
    for raw in node_docs:
        if raw is None:  # expired between SCAN and GET
            continue
        doc = contract.decode_node(raw)
        doc["age"] = max(0.0, now - float(doc.get("heartbeat", 0)))
        snap.nodes.append(doc)
        from_records = doc.get("name") in recorded
        for dest_id, counters in doc["destinations"].items():
            live = snap.destinations.setdefault(dest_id, DestinationLive())
            if not from_records:
                live.active += int(counters.get("active", 0))
            live.invites += int(counters.get("invites", 0))
            live.answered += int(counters.get("answered", 0))
            live.failovers += int(counters.get("failovers", 0))
            live.cps += float(counters.get("cps", 0.0))
            # a proxy from before the 10-s rate sends only the minute's, as cps
            live.cps_1m += float(counters.get("cps_1m", counters.get("cps", 0.0)))
    for counts in recorded.values():
        for dest_id, n in counts.items():
            snap.destinations.setdefault(dest_id, DestinationLive()).active += n
    snap.nodes.sort(key=lambda n: n.get("name", ""))
    snap.dns, snap.dns_unknown = _dns_warnings(dns_keys, dns_docs, {n.get("name") for n in snap.nodes})
    try:
        records = _node_call_records(r)
    except RedisError as exc:
        snap.redis_error = f"Redis is not reachable: {exc}"
        return snap
    for dest_id, unvouched in rules.unvouched_calls(snap.nodes, records).items():
        snap.destinations.setdefault(dest_id, DestinationLive()).unvouched = unvouched
    snap.health = {int(k): contract.decode_health(v) for k, v in health_raw.items()}
    snap.table_version = int(version) if version is not None else None
    snap.last_round = float(last_round) if last_round is not None else None
    snap.probing_paused = rules.probing_paused(ping_active)
    return snap


def probing_stopped(snap, ping_interval, ping_timeout_ms, now=None):
    """What to say when the probe rounds stopped (a round is late), else "".

    Health is frozen while no round runs; the proxy's own failure detection still works.
    """
    if snap.redis_error or snap.probing_paused:
        return ""
    if snap.last_round is None:
        return "probing stopped: no probe round has finished. Is the Celery worker (and beat) running?"
    age = (now or time.time()) - snap.last_round
    if age <= ping_interval + ping_timeout_ms / 1000 + ROUND_LATE_MARGIN_SECONDS:
        return ""
    return (
        f"probing stopped: the last probe round finished {age:.0f}s ago (one is due every {ping_interval}s). "
        "Health shown is frozen; restart the Celery worker and beat."
    )


def _dialog_counts(r):
    """node name -> {destination id: calls} from every lb:dialogcounts:<node> (one pipeline)."""
    keys = list(r.scan_iter(match=contract.DIALOG_COUNTS_KEY_PREFIX + "*", count=500))
    if not keys:
        return {}
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    prefix = len(contract.DIALOG_COUNTS_KEY_PREFIX)
    out = {}
    for key, raw in zip(keys, pipe.execute(), strict=True):
        name = (key.decode() if isinstance(key, bytes) else key)[prefix:]
        out[name] = contract.decode_dialog_counts(raw)
    return out


def _node_call_records(r):
    """Every lb:nodecalls:<name>: what each proxy, live or not, last said it carries."""
    keys = list(r.scan_iter(match=contract.NODE_CALLS_KEY_PREFIX + "*", count=500))
    records = []
    for raw in r.mget(keys) if keys else ():
        if raw is None:
            continue
        try:
            records.append(contract.decode_node_calls(raw))
        except (ValueError, TypeError):
            continue
    return records


def unvouched_text(unvouched):
    parts = []
    for u in unvouched:
        at = timezone.localtime(datetime.fromtimestamp(u.since, tz=UTC)).strftime("%H:%M")
        verb = "restarted" if u.why == rules.RESTARTED else "stopped reporting"
        parts.append(f"proxy {u.node} {verb} at {at} with {u.calls} call{'s' if u.calls != 1 else ''} up")
    return "; ".join(parts) + "; counts unknown" if parts else ""


def _dns_warnings(keys, hashes, live):
    """({destination id: [warning]} from live proxies, the same from proxies that stopped reporting)."""
    known, unknown = {}, {}
    for key, fields in zip(keys, hashes, strict=True):
        key = key.decode() if isinstance(key, bytes) else key
        out = known if key.removeprefix(contract.DNS_KEY_PREFIX) in live else unknown
        for dest_id, raw in (fields or {}).items():  # {} : deleted between SCAN and HGETALL
            try:
                out.setdefault(int(dest_id), []).append(contract.decode_dns_warning(raw))
            except (ValueError, TypeError, KeyError):
                continue  # not ours to read; the panel shows what it can vouch for
    return known, unknown


def dns_text(warnings):
    """'DNS: sip:ast.example stopped resolving at 14:02 (NXDOMAIN); using last known 127.0.0.1:5070', or ''."""

    def line(w, at):
        using = f"using last known {', '.join(w['using'])}" if w["using"] else "never resolved: not used"
        return f"DNS: {w['name']} stopped resolving at {at} ({w['why']}); {using}"

    return _per_name(warnings, line)


def dns_unknown_text(warnings):
    """While no proxy reports: the names the last proxies saw failing, as unknown, or ''."""

    def line(w, at):
        return f"DNS unknown: no proxy is looking up {w['name']}; proxy {w['node']} found it failing from {at} ({w['why']}) until it stopped reporting"

    return _per_name(warnings, line)


def _per_name(warnings, line):
    """One line per name: several proxies saying the same of one name say it once."""
    lines = {}
    for w in warnings:
        if w["name"] not in lines:
            at = timezone.localtime(datetime.fromtimestamp(w["since"], tz=UTC)).strftime("%H:%M") if w["since"] else "?"
            lines[w["name"]] = line(w, at)
    return "; ".join(lines.values())


def _json_history(key, limit):
    """A newest-first JSON list from Redis, oldest first; empty when Redis is away."""
    try:
        raw = get_redis().lrange(key, 0, limit - 1)
    except RedisError:
        return []
    return [json.loads(item) for item in reversed(raw)]


def rtt_samples(destination_id):
    """The last probe results, oldest first: list of {"t", "rtt_ms", "code"} (rtt_ms None on timeout)."""
    return _json_history(contract.rtt_key(destination_id), contract.RTT_SAMPLES)


def record_calls_sample(destination_ids):
    """Append each destination's active calls to its history, once per CALLS_SAMPLE_SECONDS cluster-wide.

    Called from the beat's every-second tick; the NX claim makes extra ticks and extra workers no-ops.
    Returns True when a sample was written.
    """
    r = get_redis()
    if not r.set(contract.CALLS_SAMPLE_CLAIM_KEY, "1", nx=True, ex=contract.CALLS_SAMPLE_SECONDS):
        return False
    snap = snapshot()
    if snap.redis_error or not snap.nodes:
        return False  # no proxy reporting: a gap in the chart, not a run of false zeros
    now = round(time.time(), 1)
    pipe = r.pipeline(transaction=False)
    for dest_id in destination_ids:
        if snap.for_destination(dest_id).unvouched:
            continue  # a gap in the chart, not a number no proxy vouches for
        key = contract.calls_key(dest_id)
        pipe.lpush(key, json.dumps({"t": now, "active": snap.for_destination(dest_id).active}))
        pipe.ltrim(key, 0, contract.CALLS_SAMPLES - 1)
    pipe.execute()
    return True


def calls_samples(destination_id):
    """Active calls over the last hour, oldest first: list of {"t", "active"}."""
    return _json_history(contract.calls_key(destination_id), contract.CALLS_SAMPLES)


def calls_histories(destination_ids):
    """calls_samples for many destinations in one round trip: id -> samples, oldest first; {} when Redis is away."""
    ids = list(destination_ids)
    if not ids:
        return {}
    try:
        pipe = get_redis().pipeline(transaction=False)
        for dest_id in ids:
            pipe.lrange(contract.calls_key(dest_id), 0, contract.CALLS_SAMPLES - 1)
        lists = pipe.execute()
    except RedisError:
        return {}
    return {dest_id: [json.loads(item) for item in reversed(raw)] for dest_id, raw in zip(ids, lists, strict=True)}
