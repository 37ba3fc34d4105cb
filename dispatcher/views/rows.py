"""The dashboard's view of each destination: what people set (PostgreSQL) beside what is live (Redis).

Built in a fixed number of queries whatever the number of destinations: sets, then destinations
with the time of their last admin-state change as a subquery.
"""

import time
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, Subquery

from dispatcher.choices import ADMIN_STATE_COLOUR, HEALTH_COLOUR, AdminState, EventKind
from dispatcher.live import STALE_AFTER_SECONDS, DestinationLive
from dispatcher.models import Destination, DispatcherSet, StateEvent
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
    not_applied: bool = False  # its admin state has not reached lb:table (dispatcher/publication.py)

    @property
    def id(self):
        return self.dest.id

    @property
    def effective_health(self):
        return rules.effective_health(self.health, self.dest.health)

    @property
    def health_state(self):
        return self.effective_health.state

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
        """Safe to restart: in maintenance and the live proxies carry no call to it, and no call
        is up that no live proxy can count (one restarted, or stopped reporting, with calls up)."""
        return self.is_inactive and not self.stale and not self.live.unvouched and self.live.active == 0

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


def make_row(dest, snap):
    return DestinationRow(dest=dest, live=snap.for_destination(dest.id), health=snap.health.get(dest.id), stale=snap.stale)


def build_board(snap):
    """(set blocks in setid order, cluster totals)."""
    blocks = {dset.id: SetBlock(dset) for dset in DispatcherSet.objects.all()}
    cluster = Totals()
    for dest in destinations_with_state_times():
        row = make_row(dest, snap)
        block = blocks[dest.dset_id]
        block.rows.append(row)
        block.totals.add(row)
        cluster.add(row)
    return list(blocks.values()), cluster


def node_rows(snap):
    """Each proxy with how far behind the published table it is (0 = current)."""
    rows = []
    for node in snap.nodes:
        behind = rules.versions_behind(snap.table_version, node.get("table_version"))
        rows.append({**node, "behind": behind, "stale": node["age"] > STALE_AFTER_SECONDS, "totals": node.get("totals") or {}})
    return rows
