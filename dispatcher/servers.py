"""A server's figures, for the REST API and /metrics: its row in every set, each summed over the live
proxies (dispatcher.live), put together by lbcore.rules (calls, drain, state, health), so the API, the
metrics and the panel's Servers view give one answer.
"""

from dataclasses import dataclass, field

from django.db.models import Prefetch

from dispatcher.choices import AdminState
from dispatcher.live import NOBODY_REPORTING, REDIS_UNREADABLE, dns_text, dns_unknown_text, unvouched_text
from dispatcher.models import Destination, Server
from lbcore import rules

# How a set's state reads in "maintenance in set 1 only".
STATE_WORDS = {AdminState.INACTIVE: "maintenance", AdminState.DISABLED: "disabled", AdminState.ACTIVE: "active"}


def mixed_summary(states):
    """What a server whose rows disagree is doing, from (setid, admin_state) pairs: 'maintenance in
    set 1 only', 'maintenance in set 1, disabled in sets 2, 3'; '' when they agree."""
    states = list(states)
    if rules.server_admin_state(s for _, s in states) != rules.MIXED:
        return ""
    groups = {}
    for setid, state in states:
        if state != AdminState.ACTIVE:
            groups.setdefault(state, []).append(str(setid))
    parts = [f"{STATE_WORDS[s]} in set{'s' if len(ids) > 1 else ''} {', '.join(ids)}" for s, ids in groups.items()]
    some_active = any(state == AdminState.ACTIVE for _, state in states)
    return ", ".join(parts) + (" only" if len(parts) == 1 and some_active else "")


@dataclass
class SetFigures:
    setid: int
    destination_id: int
    admin_state: str
    active_calls: int | None  # None: no live proxy vouches for the count


@dataclass
class ServerFigures:
    server: Server
    sets: list = field(default_factory=list)  # SetFigures, by setid
    health: str = "unknown"  # the worst of its measured rows' (lbcore.rules.server_health)
    health_unknown: str = ""  # why health is unknown when something says: "not probed — disabled"
    rtt_ms: float | None = None  # the last probe of the row whose health it shows
    active_calls: int | None = None  # over every set and live proxy; None: unknown
    cps: float | None = 0.0  # new calls per second now, over every set and live proxy; None: nobody reporting
    cps_1m: float | None = 0.0  # the same averaged over the last minute
    drained: bool | None = None  # True: safe to restart (no set sends it calls, none up); None: unknown, never "safe"
    unknown_reason: str = ""  # why active_calls is None
    dns_warning: str = ""  # its host name stopped resolving on a live proxy, which uses its last addresses
    dns_unknown: bool = False  # dns_warning is what proxies that stopped reporting last saw: nobody's word now

    @property
    def admin_state(self):
        return rules.server_admin_state(s.admin_state for s in self.sets)

    @property
    def state_summary(self):
        return mixed_summary((s.setid, s.admin_state) for s in self.sets)


def server_figures(snap, servers=None):
    """ServerFigures for `servers` (a Server queryset; default every server), by name, from a
    dispatcher.live snapshot. Two queries whatever the number of servers.

    While no proxy is reporting (snap.stale: Redis away, or no heartbeat), every count is unknown
    and no server is drained: a 0 nobody vouches for is not a 0.
    """
    rows = Destination.objects.select_related("dset").order_by("dset__setid", "id")
    queryset = (servers if servers is not None else Server.objects.all()).prefetch_related(
        Prefetch("destinations", queryset=rows, to_attr="rows")
    )
    reporting = not snap.stale
    return [_figures(server, server.rows, snap, reporting) for server in queryset]


def _figures(server, dests, snap, reporting):
    out = ServerFigures(server=server)
    healths = []
    unvouched = []
    dns, dns_unknown = [], []
    for dest in dests:
        dns += snap.dns.get(dest.id, ())
        dns_unknown += snap.dns_unknown.get(dest.id, ())
        live = snap.for_destination(dest.id)
        health = rules.known_health(dest.admin_state, rules.effective_health(snap.health.get(dest.id), dest.health))
        healths.append((dest.admin_state, health))
        out.sets.append(SetFigures(dest.dset.setid, dest.id, dest.admin_state, live.active_known if reporting else None))
        out.cps += live.cps
        out.cps_1m += live.cps_1m
        unvouched += live.unvouched
    counts = [s.active_calls for s in out.sets]
    speaks = rules.server_health(healths)
    worst = healths[speaks][1] if speaks is not None else None
    out.health = worst.state if worst else "unknown"
    out.health_unknown = worst.reason if worst and worst.state == "unknown" else ""
    out.rtt_ms = worst.rtt_ms if worst else None
    out.active_calls = rules.server_calls(counts)
    out.drained = rules.drained(((s.admin_state, s.active_calls) for s in out.sets), reporting=reporting)
    # a proxy that stopped reporting is not 0 calls a second: unknown
    out.cps = round(out.cps, 3) if reporting else None
    out.cps_1m = round(out.cps_1m, 3) if reporting else None
    out.dns_warning = dns_text(dns)
    if not out.dns_warning and not reporting and dns_unknown:
        # Live proxies that do not complain resolve the name: their silence is an answer. With none
        # reporting, nobody looks it up; the last failure seen is shown, as unknown, not dropped.
        out.dns_warning, out.dns_unknown = dns_unknown_text(dns_unknown), True
    if out.active_calls is None:
        if reporting:
            out.unknown_reason = unvouched_text(_merged(unvouched))
        else:
            out.unknown_reason = REDIS_UNREADABLE if snap.redis_error else NOBODY_REPORTING
    return out


def _merged(unvouched):
    # One line per proxy, its calls summed over the server's rows.
    merged = {}
    for u in unvouched:
        key = (u.node, u.why, u.since)
        merged[key] = merged.get(key, 0) + u.calls
    return [rules.Unvouched(*key, calls) for key, calls in merged.items()]


class LiveFigures:
    """Per-request figures for serializers: every server's, computed once on first use."""

    def __init__(self, snap):
        self.snap = snap
        self._servers = None

    def server(self, server_id):
        if self._servers is None:
            self._servers = {f.server.id: f for f in server_figures(self.snap)}
        return self._servers.get(server_id)

    def destination_calls(self, dest_id):
        """A row's active calls over the live proxies, None when unknown (as the server counts them)."""
        return self.snap.for_destination(dest_id).active_known if not self.snap.stale else None
