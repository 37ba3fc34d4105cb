"""The dashboard's view of each destination: what people set (PostgreSQL) beside what is live (Redis).

Built in a fixed number of queries whatever the number of destinations: sets, then destinations
with the time of their last admin-state change as a subquery.
"""

import time
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, Subquery

from dispatcher.choices import ADMIN_STATE_COLOUR, HEALTH_COLOUR, AdminState, EventKind
from dispatcher.live import STALE_AFTER_SECONDS, DestinationLive, node_load
from dispatcher.models import Destination, DispatcherSet, Server, StateEvent
from dispatcher.servers import ServerFigures, server_figures
from lbcore import contract, rules


def destinations_with_state_times():
    # A server's Maintenance/Return is one event for all its rows (services.set_server_state): it counts for each.
    last_admin_change = StateEvent.objects.filter(
        Q(destination=OuterRef("pk")) | Q(server=OuterRef("server_id")), kind=EventKind.ADMIN
    ).order_by("-created")
    return Destination.objects.select_related("dset").annotate(admin_changed=Subquery(last_admin_change.values("created")[:1]))


@dataclass
class DestinationRow:
    dest: Destination
    live: DestinationLive
    health: contract.Health | None  # from Redis; None when no probe has written one
    stale: bool  # no proxy heartbeat: live counters unknown
    server: ServerFigures  # its server's figures over every set: drain is the server's, not the row's
    not_applied: bool = False  # its admin state has not reached lb:table (dispatcher/publication.py)
    applied_unknown: bool = False  # whether it has cannot be told: Redis is unreadable
    unreadable: str = ""  # Redis could not be read (snap.redis_error): its probe result and history are unknown

    @property
    def id(self):
        return self.dest.id

    @property
    def effective_health(self):
        return rules.effective_health(self.health, self.dest.health)

    @property
    def known_health(self):
        """The health the panel may state (lbcore.rules.known_health): unknown, with why, for a disabled row."""
        return rules.known_health(self.dest.admin_state, self.effective_health)

    @property
    def not_probed(self):
        """'not probed — disabled' when nothing measures its health (lbcore.rules.unmeasured), else ''."""
        return rules.unmeasured(self.dest.admin_state)

    @property
    def health_state(self):
        return self.known_health.state

    @property
    def health_label(self):
        return self.health_state.capitalize()

    @property
    def health_colour(self):
        return HEALTH_COLOUR.get(self.health_state, "grey")

    @property
    def state_colour(self):
        return ADMIN_STATE_COLOUR[self.dest.admin_state]

    @property
    def state_label(self):
        return {"active": "Active", "inactive": "Maintenance", "disabled": "Disabled"}[self.dest.admin_state]

    @property
    def flags(self):
        return rules.flag_letters(self.dest.admin_state, self.health_state, self.dest.probing)

    @property
    def usable(self):
        return rules.usable(self.dest, self.effective_health)

    @property
    def is_active(self):
        return self.dest.admin_state == AdminState.ACTIVE

    @property
    def is_inactive(self):
        return self.dest.admin_state == AdminState.INACTIVE

    @property
    def is_disabled(self):
        return self.dest.admin_state == AdminState.DISABLED

    @property
    def drained(self):
        """Safe to restart: in maintenance and its server (the same box, in every set) drained by
        lbcore.rules.drained: no set sends it new calls, no call up in any set, none that no live
        proxy can count. A row at 0 whose box still takes calls through another set is not safe to
        restart."""
        return self.is_inactive and self.server.drained is True

    @property
    def drain_unknown(self):
        """Why whether it is drained is unknown (its calls or its server's other rows'), or ''."""
        if self.calls_unknown:
            return self.calls_unknown
        return self.server.unknown_reason if self.server.drained is None and not self.stale else ""

    @property
    def in_service_elsewhere(self):
        """Its box takes new calls through another set: not safe to restart, whatever its count."""
        return any(s.admin_state == AdminState.ACTIVE for s in self.server.sets if s.destination_id != self.id)

    @property
    def still_elsewhere(self):
        """Why its box is not drained although this row is in maintenance: 'ast3 still takes new
        calls through set 2' and/or '3 calls on ast3 through set 2', or ''."""
        name = self.server.server.name
        others = [s for s in self.server.sets if s.destination_id != self.id]
        in_service = [str(s.setid) for s in others if s.admin_state == AdminState.ACTIVE]
        busy = [s for s in others if s.active_calls]
        parts = []
        if in_service:
            parts.append(f"{name} still takes new calls through set{'s' if len(in_service) > 1 else ''} {', '.join(in_service)}")
        if busy:
            calls = sum(s.active_calls for s in busy)
            sets = ", ".join(str(s.setid) for s in busy)
            parts.append(f"{calls} call{'s' if calls != 1 else ''} on {name} through set{'s' if len(busy) > 1 else ''} {sets}")
        return "; ".join(parts)

    @property
    def calls_unknown(self):
        """Why the active count is unknown ('proxy lb1 restarted at 14:02 with 40 calls up; ...'), or ''."""
        return self.live.unknown_reason

    @property
    def name(self):
        return self.dest.duid or self.dest.uri

    @property
    def state_since(self):
        """Epoch of the later of the last admin change and the last health change."""
        admin = getattr(self.dest, "admin_changed", None) or self.dest.created
        times = [admin.timestamp()]
        if self.health and self.health.since:
            times.append(self.health.since)
        elif self.dest.health_changed:
            times.append(self.dest.health_changed.timestamp())
        return max(times)

    @property
    def in_state_for(self):
        return max(0.0, time.time() - self.state_since)


@dataclass
class Totals:
    active: int = 0
    cps: float = 0.0  # new calls per second over the last 10 s
    cps_1m: float = 0.0  # ... over the last minute
    up: int = 0
    down: int = 0
    usable: int = 0
    count: int = 0
    unknown: int = 0  # destinations whose active count no live proxy vouches for

    def add(self, row):
        self.active += row.live.active
        self.unknown += bool(row.live.unvouched)
        self.cps += row.live.cps
        self.cps_1m += row.live.cps_1m
        self.count += 1
        self.up += row.health_state == contract.UP
        self.down += row.health_state in (contract.DOWN, contract.SUSPECT)
        self.usable += row.usable


@dataclass
class SetBlock:
    dset: DispatcherSet
    rows: list = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


def make_row(dest, snap, figures=None):
    """One row; `figures` (server id -> ServerFigures) saves reading its server's other rows."""
    if figures is None:
        figures = {f.server.id: f for f in server_figures(snap, Server.objects.filter(pk=dest.server_id))}
    live = snap.for_destination(dest.id)
    server = figures[dest.server_id]
    return DestinationRow(
        dest=dest, live=live, health=snap.health.get(dest.id), stale=snap.stale, server=server, unreadable=snap.redis_error
    )


def build_board(snap):
    """(set blocks in setid order, cluster totals)."""
    blocks = {dset.id: SetBlock(dset) for dset in DispatcherSet.objects.all()}
    cluster = Totals()
    figures = {f.server.id: f for f in server_figures(snap)}
    for dest in destinations_with_state_times():
        row = make_row(dest, snap, figures)
        block = blocks[dest.dset_id]
        block.rows.append(row)
        block.totals.add(row)
        cluster.add(row)
    return list(blocks.values()), cluster


def node_rows(snap, busy_pct):
    """Each proxy with how far behind the published table it is (0 = current), how long its table
    took to reach it, whether it holds the floating address (None: it cannot tell), and its CPU
    load against `busy_pct` (the alert's threshold)."""
    rows = []
    for node in snap.nodes:
        behind = rules.versions_behind(snap.table_version, node.get("table_version"))
        rows.append(
            {
                **node,
                "behind": behind,
                "stale": node["age"] > STALE_AFTER_SECONDS,
                "totals": node.get("totals") or {},
                "propagation_ms": rules.propagation_ms(node),
                "holds_address": node.get("holds_address"),
                "load": node_load(node, busy_pct),
            }
        )
    return rows


@dataclass
class DepartedNode:
    """A proxy that stopped reporting while calls were up through it: they are up on the servers
    still, and no live node vouches for them."""

    name: str
    since: float | None  # when it last said what it carried (None: its records do not say)
    calls: int


def departed_nodes(snap):
    """Nodes with no heartbeat that left calls up: from their dialog records (snap.node_calls), and
    from what the snapshot could not vouch for (lb:nodecalls of proxies from before the records)."""
    by_name = {}
    for live in snap.destinations.values():
        for u in live.unvouched:
            if u.why != rules.NOT_REPORTING:
                continue
            node = by_name.setdefault(u.node, DepartedNode(u.node, u.since, 0))
            node.calls += u.calls
            node.since = max(node.since, u.since)
    reporting = {n.get("name") for n in snap.nodes}
    for name, counts in snap.node_calls.items():
        calls = sum(counts.values())
        if calls and name not in reporting and name not in by_name:
            by_name[name] = DepartedNode(name, None, calls)
    return sorted(by_name.values(), key=lambda n: n.name)
