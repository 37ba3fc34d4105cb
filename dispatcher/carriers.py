"""The carriers' figures, for the Carriers page, the API and /metrics: one row per carrier (each source
rule's carrier name, rules sharing a description being one, and "other"), summed over the proxies.

Each proxy counts since its process started (lbcore.carriers). Live proxies count from their
heartbeat; a proxy that stopped reporting from the record it kept (lb:nodecarriers:<name>): its
counts up to then are in, its rate is not, and the figures are partial, saying why. So are they
when a proxy restarted (its previous process's counts are gone) or when no proxy reports at all.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from redis.exceptions import RedisError

from dispatcher.live import STALE_AFTER_SECONDS, snapshot
from dispatcher.models import ProxySettings, SourceRule
from dispatcher.redis_client import get_redis
from lbcore import carriers as lc
from lbcore import contract


def hhmm(epoch):
    return timezone.localtime(datetime.fromtimestamp(float(epoch), tz=UTC)).strftime("%H:%M")


@dataclass
class CarrierRow:
    name: str
    networks: list = field(default_factory=list)  # the rules' networks; [] for "other"
    setids: list = field(default_factory=list)
    defined: bool = True  # False: counted by a proxy, but no rule names it any more
    figures: dict = field(default_factory=lc.empty_figures)

    @property
    def anchor(self):
        return "carrier-" + (slugify(self.name) or "unnamed")

    @property
    def calls(self):
        return self.figures["calls"]

    @property
    def answered(self):
        return self.figures["answered"]

    @property
    def canceled(self):
        return self.figures["canceled"]

    @property
    def failed(self):
        return self.figures["failed"]

    @property
    def failures(self):
        return lc.failures(self.figures)

    @property
    def answer_rate(self):
        return lc.answer_rate(self.answered, self.calls)

    @property
    def cps(self):
        return self.figures["cps"]

    @property
    def setup_p50(self):
        """The histogram bucket the median setup time lies in (lbcore.carriers.SetupBucket), None with no calls."""
        return lc.quantile(self.figures["setup_buckets"], 0.5)

    @property
    def setup_p95(self):
        return lc.quantile(self.figures["setup_buckets"], 0.95)

    @property
    def recent(self):
        return self.figures["recent"]


@dataclass
class NodeSpan:
    name: str
    since: float  # the process started: its counts are from then
    reporting: bool
    last_seen: float | None = None

    @property
    def since_text(self):
        return hhmm(self.since)


@dataclass
class CarrierFigures:
    rows: list = field(default_factory=list)
    nodes: list = field(default_factory=list)  # NodeSpan, by name
    why_partial: list = field(default_factory=list)  # sentences a person can act on
    live_nodes: int = 0
    redis_error: str = ""
    taken_at: float = field(default_factory=time.time)

    @property
    def partial(self):
        return bool(self.why_partial)

    @property
    def cps_known(self):
        """The current rates come from live proxies only: with none, they are unknown, not 0."""
        return self.live_nodes > 0

    def row(self, name):
        return next((r for r in self.rows if r.name == name), None)


def defined_carriers():
    """name -> CarrierRow (no figures yet) for every rule's carrier, then "other" (the default set)."""
    rows = {}
    for rule in SourceRule.objects.select_related("dset").order_by("network"):
        name = contract.carrier_name(rule.network, rule.description)
        row = rows.get(name) or rows.setdefault(name, CarrierRow(name))
        row.networks.append(rule.network)
        if rule.dset.setid not in row.setids:
            row.setids.append(rule.dset.setid)
    default = ProxySettings.objects.select_related("default_set").filter(pk=1).first()
    other = CarrierRow(contract.OTHER_CARRIER)
    if default is not None and default.default_set is not None:
        other.setids.append(default.default_set.setid)
    rows.setdefault(contract.OTHER_CARRIER, other)
    return rows


def _kept_records():
    r = get_redis()
    keys = list(r.scan_iter(match=contract.NODE_CARRIERS_KEY_PREFIX + "*", count=500))
    docs = r.mget(keys) if keys else []
    return [doc for doc in (contract.decode_node_carriers(raw) for raw in docs if raw is not None) if doc is not None]


def carrier_figures(snap=None):
    """Every carrier's figures now; `snap`: a dispatcher.live snapshot already taken in this request."""
    snap = snap if snap is not None else snapshot()
    out = CarrierFigures(redis_error=snap.redis_error)
    rows = defined_carriers()
    if snap.redis_error:
        out.rows = _ordered(rows)
        out.why_partial.append(snap.redis_error)
        return out
    try:
        kept = _kept_records()
    except RedisError as exc:
        kept = []
        out.why_partial.append(f"the records of proxies that stopped reporting could not be read: {exc}")
    live = {n.get("name", ""): n for n in snap.nodes}
    out.live_nodes = len(live)

    def add(name, doc, current):
        row = rows.get(name)
        if row is None:  # counted under a rule since removed or renamed: still calls that happened
            row = rows[name] = CarrierRow(name, defined=False)
        lc.add_figures(row.figures, doc, current=current)

    for name, node in live.items():
        for carrier, doc in (node.get("carriers") or {}).items():
            add(carrier, doc, True)
        out.nodes.append(NodeSpan(name, float(node.get("started") or 0.0), True, float(node.get("heartbeat") or 0.0)))
        if node["age"] > STALE_AFTER_SECONDS:
            out.why_partial.append(f"proxy {name} last reported {node['age']:.0f}s ago: its calls since then are not counted yet")
    for rec in kept:
        name = rec.get("name", "")
        prev = rec["previous"]
        if name in live:
            if prev is not None:
                out.why_partial.append(
                    f"proxy {name} restarted at {hhmm(rec['started'])}: the calls its previous process counted "
                    f"({hhmm(prev['started'])} to {hhmm(prev['written'])}) are gone"
                )
            continue
        for carrier, doc in rec["carriers"].items():
            add(carrier, doc, False)
        out.nodes.append(NodeSpan(name, rec["started"], False, rec["written"]))
        out.why_partial.append(
            f"proxy {name} stopped reporting at {hhmm(rec['written'])}: its counts until then are included, "
            "calls it carried after that are not (is it running? its record goes after a day)"
        )
    if not live:
        out.why_partial.append("no proxy is reporting: calls per second unknown, and any calls now are not counted")
    out.nodes.sort(key=lambda n: n.name)
    out.rows = _ordered(rows)
    return out


def _ordered(rows):
    """The rules' carriers by name, then names no rule has now, then "other"."""
    return sorted(rows.values(), key=lambda r: (r.name == contract.OTHER_CARRIER, not r.defined, r.name.casefold()))


def carrier_findings(snap, min_answer_rate, max_failure_rate, min_calls):
    """For the alert engine: (key, firing, title, text, link) per carrier with at least `min_calls`
    calls in the recent window (lbcore.carriers.RECENT_SECONDS, live proxies), firing when its answer
    rate is below `min_answer_rate` or its failure rate above `max_failure_rate` (fractions 0..1).

    `snap`: a dispatcher.live snapshot (the heartbeats) or CarrierFigures."""
    if isinstance(snap, CarrierFigures):
        recent = {row.name: row.recent for row in snap.rows}
    else:
        recent = {}
        for node in snap.nodes:
            for name, doc in (node.get("carriers") or {}).items():
                lc.add_figures(recent.setdefault(name, lc.empty_figures()), doc)
        recent = {name: figures["recent"] for name, figures in recent.items()}
    minutes = lc.RECENT_SECONDS // 60
    page = reverse("panel:carriers")
    out = []
    for name in sorted(recent):
        r = recent[name]
        calls = r["calls"]
        if calls < max(1, min_calls):
            continue
        rate, failing = r["answered"] / calls, r["failed"] / calls
        low, high = rate < min_answer_rate, failing > max_failure_rate
        who = "Calls from no carrier's network" if name == contract.OTHER_CARRIER else name
        if low and high:
            title = f"{who}: {rate:.0%} answered, {failing:.0%} failed"
        elif low:
            title = f"{who}: answer rate {rate:.0%}"
        elif high:
            title = f"{who}: {failing:.0%} of calls failed"
        else:
            title = f"{who}: {rate:.0%} answered"
        text = (
            f"In the last {minutes} minutes: {calls} calls, {r['answered']} answered ({rate:.0%}), "
            f"{r['failed']} failed ({failing:.0%}); thresholds: answer rate at least {min_answer_rate:.0%}, "
            f"failures at most {max_failure_rate:.0%}."
        )
        out.append((f"carrier:{name}", low or high, title, text, f"{page}#{CarrierRow(name).anchor}"))
    return out
