"""The Servers view's rows: one Asterisk box with its row in every set, summed.

Built from the per-set board's rows (dispatcher.views.rows), each of which carries its server's
figures (dispatcher.servers.ServerFigures: calls, drain, state, as the API and /metrics give them).
"""

from dataclasses import dataclass, field, replace

from dispatcher import live
from dispatcher.choices import SERVER_STATE_COLOUR, SERVER_STATE_LABEL, AdminState
from dispatcher.models import Server
from dispatcher.servers import ServerFigures
from dispatcher.views.charts import sparkline, summed_samples
from lbcore import contract, rules


@dataclass
class ServerRow:
    server: Server
    figures: ServerFigures
    rows: list = field(default_factory=list)  # DestinationRow, one per set, in setid order
    stale: bool = False  # no proxy reporting
    history: object = None  # charts.Chart: the sparkline of the last hour

    @property
    def id(self):
        return self.server.id

    @property
    def name(self):
        return self.server.name

    @property
    def admin_state(self):
        return self.figures.admin_state

    @property
    def state_label(self):
        return SERVER_STATE_LABEL[self.admin_state]

    @property
    def state_colour(self):
        return SERVER_STATE_COLOUR[self.admin_state]

    @property
    def is_mixed(self):
        return self.admin_state == rules.MIXED

    @property
    def mixed_text(self):
        """'maintenance in set 1 only', 'maintenance in set 1, disabled in sets 2, 3', or ''."""
        return self.figures.state_summary

    @property
    def takes_no_calls(self):
        """Every row in maintenance or disabled: the server drains."""
        return self.admin_state in (AdminState.INACTIVE, AdminState.DISABLED)

    @property
    def usable(self):
        """Takes new calls through at least one set (its row there is active and not down)."""
        return any(r.usable for r in self.rows)

    @property
    def unreadable(self):
        """Why its probe result and history cannot be read (Redis), or ''."""
        return next((r.unreadable for r in self.rows if r.unreadable), "")

    @property
    def health_state(self):
        row = self.health_row
        return row.health_state if row else contract.UNKNOWN

    @property
    def health_row(self):
        """The row whose health the server shows (lbcore.rules.server_health: the worst of the rows
        something measures): its last probe is the server's."""
        speaks = rules.server_health([(r.dest.admin_state, r.known_health) for r in self.rows])
        return self.rows[speaks] if speaks is not None else None

    @property
    def not_probed(self):
        """'not probed — disabled' when no row of it is probed, else ''."""
        row = self.health_row
        return row.not_probed if row else ""

    @property
    def health(self):
        row = self.health_row
        return row.health if row else None

    @property
    def health_label(self):
        return self.health_state.capitalize()

    @property
    def health_reason(self):
        row = self.health_row
        return row.known_health.reason if row else ""

    @property
    def health_colour(self):
        return self.health_row.health_colour if self.health_row else "grey"

    @property
    def active(self):
        """Calls up on the box over every set and live proxy, or None when nobody can vouch for them."""
        return self.figures.active_calls

    @property
    def calls_unknown(self):
        """Why `active` is None, for the row and the dialog."""
        return self.figures.unknown_reason

    @property
    def dns_warning(self):
        """'DNS: ... stopped resolving at 14:02 (NXDOMAIN); using last known ...', or ''."""
        return self.figures.dns_warning

    @property
    def drained(self):
        """True (safe to restart), False (calls up), None (unknown: never 'safe')."""
        return self.figures.drained

    @property
    def cps_now(self):
        """New calls per second over the last 10 s, over every set and proxy."""
        return sum(r.live.cps for r in self.rows)

    @property
    def cps_minute(self):
        return sum(r.live.cps_1m for r in self.rows)

    @property
    def sets(self):
        return [r.dest.dset for r in self.rows]

    @property
    def not_applied(self):
        return any(r.not_applied for r in self.rows)

    @property
    def applied_unknown(self):
        return not self.not_applied and any(r.applied_unknown for r in self.rows)

    @property
    def is_active(self):
        return self.admin_state == AdminState.ACTIVE

    @property
    def is_inactive(self):
        return self.admin_state == AdminState.INACTIVE

    @property
    def is_disabled(self):
        return self.admin_state == AdminState.DISABLED


def server_totals(cluster, servers):
    """The status bar's totals with its counts taken over servers, not set rows: `in service`, `up` and
    `down` count each box once (its calls and CPS are already the same summed either way)."""
    return replace(
        cluster,
        count=len(servers),
        usable=sum(s.usable for s in servers),
        up=sum(s.health_state == contract.UP for s in servers),
        down=sum(s.health_state in (contract.DOWN, contract.SUSPECT) for s in servers),
    )


def build_servers(blocks, snap, *, server_ids=None):
    """ServerRows, by name, from the per-set board's blocks (dispatcher.views.rows.build_board),
    each with the sparkline of its last hour; `server_ids` limits them to those."""
    by_server = {}
    for block in blocks:
        for row in block.rows:
            if server_ids is None or row.dest.server_id in server_ids:
                by_server.setdefault(row.dest.server_id, []).append(row)
    out = [
        ServerRow(server=rows[0].server.server, figures=rows[0].server, rows=rows, stale=snap.stale)
        for rows in by_server.values()
    ]
    out.sort(key=lambda s: (s.name, s.id))
    histories = live.calls_histories([r.dest.id for s in out for r in s.rows])
    for s in out:
        s.history = sparkline(summed_samples([histories.get(r.dest.id, []) for r in s.rows]), now=snap.taken_at)
    return out
