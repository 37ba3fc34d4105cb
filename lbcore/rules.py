"""The rules more than one process needs, each written once: the proxy routes by them, the
prober probes by them, the panel, the API and JSON-RPC show them.

Plain functions on plain values (states are the strings of lbcore.contract), so the proxy's hot
path pays one call and the panel can pass a Django row wherever a destination is asked for:
anything with `admin_state` will do.
"""

import time
from dataclasses import dataclass

from lbcore.contract import (
    ACTIVE,
    DISABLED,
    DOWN,
    FLAG_NOPING,
    INACTIVE,
    PROBE_ALL,
    PROBE_INACTIVE,
    SUSPECT,
    UNKNOWN,
    UP,
    Health,
)
from sip.uri import parse_uri


def usable(dest, health, hold=None, now=None):
    """Whether `dest` takes new calls: its admin state is active and its health is not down.

    `health` is a contract.Health or None (never probed: usable). A suspect mark (a proxy saw a
    5xx or a timeout) counts as down until a probe settles it, or, given `hold` seconds, until it
    is that old: a proxy without a prober must not lose a server for good. Called per destination
    per INVITE: keep it a few comparisons.
    """
    if dest.admin_state != ACTIVE:
        return False
    if health is None:
        return True
    state = health.state
    if state == DOWN:
        return False
    if state == SUSPECT:
        return hold is not None and (now if now is not None else time.time()) - health.since >= hold
    return True


def effective_health(live, recorded_state, since=0.0):
    """The health the proxies act on (lb:health, `live`) when Redis has one, else the last one
    recorded (the database row's `recorded_state`, as of `since`), as a contract.Health."""
    if live is not None:
        return live
    return Health(state=recorded_state, since=since)


NOT_PROBED_DISABLED = "not probed — disabled"


def unmeasured(admin_state):
    """Why nothing measures a destination's health now, or "": a disabled one is in no probe round,
    gets no recovery probe nor a probe for a proxy's suspect mark (probe_allowed), and no proxy sends
    it a call, so nothing that could change its health reaches it."""
    return NOT_PROBED_DISABLED if admin_state == DISABLED else ""


def known_health(admin_state, health):
    """The health a reader may state (the panel, the API, /metrics, JSON-RPC, the alerts): `health`
    (effective_health's), except for a destination nothing measures (`unmeasured`): whatever lb:health
    or the database last said of it was measured before it was disabled, and the box may have died or
    come back since, so its health is unknown, `reason` saying why. Not what the proxy routes by: a
    disabled destination takes no call whatever its health (usable)."""
    why = unmeasured(admin_state)
    if why:
        return Health(state=UNKNOWN, since=0.0, reason=why)
    return health


def state_letter(admin_state, health_state=None):
    """Kamailio's state letter: D disabled, I inactive (maintenance, or taken down by its probes,
    as Kamailio marks it), else A."""
    if admin_state == DISABLED:
        return "D"
    if admin_state == INACTIVE or health_state == DOWN:
        return "I"
    return "A"


def flag_letters(admin_state, health_state, probing):
    """The letters the panel, the REST API and the admin show: the state letter, T while
    suspect (trying), P with the probing flag. kamcmd users read them at once."""
    letters = state_letter(admin_state, health_state)
    if health_state == SUSPECT:
        letters += "T"
    if probing:
        letters += "P"
    return letters


def rpc_flags(admin_state, health_state, probed, extra_flags=0):
    """JSON-RPC dispatcher.list's FLAGS, two letters as Kamailio's ds_rpc_print_set writes them:
    the state letter with T (trying) in place of A while suspect, then P when probed, N when the
    list line carries DS_NOPING_DST (32), else X."""
    first = state_letter(admin_state, health_state)
    if first == "A" and health_state == SUSPECT:
        first = "T"
    if probed:
        return first + "P"
    return first + ("N" if extra_flags & FLAG_NOPING else "X")


def probe_allowed(admin_state, extra_flags=0):
    """Disabled (D) means neither used nor probed: not in a round, not between rounds, not on a
    proxy's suspect mark; nor is a destination whose line carries DS_NOPING_DST (32), as in
    Kamailio. Every other destination may be probed."""
    return admin_state != DISABLED and not extra_flags & FLAG_NOPING


def probed(admin_state, probing, probing_mode, health_state=None, extra_flags=0):
    """Whether a probe round probes a destination (Kamailio's ds_ping_set and ds_ping_result_helper).

    Never a disabled one, nor one whose list line carries DS_NOPING_DST (32), as in Kamailio.
    Mode 1 (PROBE_ALL): every other one. Mode 2 (PROBE_INACTIVE): those with the P flag that are
    inactive, in maintenance or taken down by probes, as Kamailio. Modes 0 and 3: those with the P
    flag, continually, and one that is down whatever its P flag, as Kamailio's failure callback
    sets P on it: otherwise nothing would ever bring it back. Mode 3 is exact parity; in mode 0
    Kamailio clears P after the first good reply (one probe per reload) and we keep probing:
    a health figure from one probe at start-up would be a guess by the next hour (differs on purpose).
    """
    if not probe_allowed(admin_state, extra_flags):
        return False
    if probing_mode == PROBE_ALL:
        return True
    if probing_mode == PROBE_INACTIVE:
        return probing and (admin_state == INACTIVE or health_state == DOWN)
    return probing or health_state == DOWN


def probing_paused(ping_active):
    """Whether probing is paused, from lb:probe:active as Redis returns it: "0" is paused
    (JSON-RPC dispatcher.ping_active 0, as in Kamailio); absent or anything else, probing."""
    return ping_active in (b"0", "0")


def versions_behind(published, applied):
    """How far a proxy is behind the published table: 0 when it routes with lb:table's version,
    None while that version is unknown (no table, Redis away). A proxy that reports no version
    is behind by all of them; one on a higher version than lb:table (Redis lost the table and
    numbering began again) does not have the published table either: 1 behind."""
    if published is None:
        return None
    applied = applied or 0
    if applied == published:
        return 0
    return published - applied if applied < published else 1


def propagation_ms(node):
    """How long the table a proxy routes from took to reach it: its table_applied_at minus that
    table's published_at, in ms; None from a proxy that does not say (one from before the stamps).
    Across hosts this is as good as their clocks (NTP: a few ms)."""
    applied, published = node.get("table_applied_at"), node.get("table_published_at")
    if applied is None or not published:
        return None
    return max(0.0, (float(applied) - float(published)) * 1000)


# -- how near a proxy is to its limit ------------------------------------------------------

BUSY_MARGIN_PCT = 20  # "busy" from this far under the limit: time to plan a process or a node
LOAD_LEVELS = ("ok", "busy", "limit")


def load_level(load, limit_pct):
    """Where a proxy process stands against the one core it can use: "limit" at or past
    `limit_pct` % of it (the alert's threshold: past it the loop falls behind and new calls are
    shed with 503), "busy" within BUSY_MARGIN_PCT under it, else "ok"; None when there is no
    figure to judge (lbcore.contract.node_load gave None). A worker behind a reader stands where
    the busier of the two does: every datagram from callers waits for the reader first. A stale
    heartbeat is the caller's to treat as unknown: its figure is from before it stopped."""
    if load is None:
        return None
    return share_level(max(load["cpu"], load.get("reader_cpu") or 0.0), limit_pct)


def share_level(share, limit_pct):
    """load_level for one process's share of a core (0-1); None for None."""
    if share is None:
        return None
    pct = share * 100
    if pct >= limit_pct:
        return "limit"
    if pct >= limit_pct - BUSY_MARGIN_PCT:
        return "busy"
    return "ok"


# -- calls no live proxy vouches for ------------------------------------------------------


def calls_left(record):
    """id -> calls a node's record says are up (seen or inherited): what a successor inherits."""
    out = dict(record["unknown"])
    for did, n in record["active"].items():
        out[did] = out.get(did, 0) + n
    return out


RESTARTED, NOT_REPORTING = "restarted", "not reporting"


@dataclass(frozen=True, slots=True)
class Unvouched:
    """Calls on a destination that no live proxy can count: `node` restarted at `since` with
    `calls` up (RESTARTED), or stopped sending heartbeats at `since` with `calls` up (NOT_REPORTING)."""

    node: str
    why: str
    since: float
    calls: int


def unvouched_calls(nodes, records):
    """The rule every reader of call counts uses: a figure no live node vouches for is unknown.

    `nodes`: decoded heartbeats of the live proxies; `records`: decoded lb:nodecalls records.
    Returns destination id -> [Unvouched]. A live node vouches for its own counts except the
    calls its previous process left up (its heartbeat's `unknown`); a node with no heartbeat
    vouches for nothing, so whatever its record still shows up is unknown. Until call state is
    kept in the cluster, such a destination's active count is not 0, nor any number: it is unknown.
    """
    out = {}
    live = set()
    for node in nodes:
        name = node.get("name", "")
        live.add(name)
        since = float(node.get("restarted_at") or node.get("started") or 0.0)
        for did, n in (node.get("unknown") or {}).items():
            if n > 0:
                out.setdefault(int(did), []).append(Unvouched(name, RESTARTED, since, int(n)))
    for record in records:
        name = record.get("name", "")
        if name in live:
            continue
        since = float(record.get("written") or 0.0)
        for did, n in calls_left(record).items():
            out.setdefault(did, []).append(Unvouched(name, NOT_REPORTING, since, n))
    return out


# -- servers: one SIP endpoint, one Asterisk box, listed in any number of sets -------------------


def server_endpoint(uri):
    """What makes two destinations one server: (transport, host, port) of the URI, the host in lower
    case and the port made explicit, so sip:AST1:5060 and sip:ast1 are the same box. Raises
    sip.errors.SipSyntaxError on a URI that is not one."""
    parsed = parse_uri(uri)
    return parsed.transport, parsed.host.lower(), parsed.effective_port


def server_name(duids, host, port):
    """A server's name until a person gives it one: the DUID its rows agree on, else host:port."""
    names = set(duids)
    if len(names) == 1 and "" not in names:
        return names.pop()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_name_key(name):
    """What makes two server names one: case is ignored (the call lookup finds a server by its name
    whatever the case, so "AST4" and "ast4" would be one name there). The database's unique
    constraint on lower(name) says the same."""
    return name.lower()


def server_name_choices(duids, transport, host, port):
    """The names a server no person named may take, best first: server_name's, then host:port, then
    transport:host:port (Kamailio's socket notation), then that numbered. Names are unique, and two
    servers' rows may give the same name (one DUID in two sets, one host:port over UDP and TCP):
    the second takes its next choice."""
    base = _base_choices(duids, transport, host, port)
    yield from base
    n = 2
    while True:
        yield f"{base[-1]} ({n})"
        n += 1


def _base_choices(duids, transport, host, port):
    hostport = server_name((), host, port)
    return list(dict.fromkeys((server_name(duids, host, port), hostport, f"{transport}:{hostport}")))


def derive_server_names(servers, taken):
    """{key: name} for servers no person named, each the first of its server_name_choices that no
    other server holds. `servers`: (key, current name, duids, transport, host, port), in the order
    they choose; `taken`: the server_name_key of every other server's name.

    Stable: a server keeps the name it has unless a better one of its choices is free, so a name
    never moves from one server to another because of a change to neither. Of servers whose current
    names clash, the first in `servers` keeps it."""
    servers = list(servers)
    reserved = {}  # name key -> the server's key holding it
    held = {}  # server's key -> the rank of its current name among its choices
    for key, current, duids, transport, host, port in servers:
        rank = _choice_rank(current, duids, transport, host, port)
        name_key = server_name_key(current)
        if rank is not None and name_key not in taken and name_key not in reserved:
            reserved[name_key] = key
            held[key] = rank
    names = {}
    for key, current, duids, transport, host, port in servers:
        rank = held.get(key)
        for i, name in enumerate(server_name_choices(duids, transport, host, port)):
            if rank is not None and i >= rank:
                names[key] = current
                break
            name_key = server_name_key(name)
            if name_key not in taken and reserved.get(name_key, key) == key:
                if rank is not None:
                    del reserved[server_name_key(current)]
                reserved[name_key] = key
                names[key] = name
                break
    return names


def _choice_rank(name, duids, transport, host, port):
    # Where `name` stands in server_name_choices (compared exactly), None when it is none of them.
    base = _base_choices(duids, transport, host, port)
    if name in base:
        return base.index(name)
    prefix = f"{base[-1]} ("
    number = name[len(prefix) : -1] if name.startswith(prefix) and name.endswith(")") else ""
    if number.isascii() and number.isdigit() and not number.startswith("0") and int(number) >= 2:
        return len(base) + int(number) - 2
    return None


MIXED = "mixed"


def server_admin_state(states):
    """A server's admin state from its rows': the one they share, else MIXED (say which set is in
    which state beside it). A server with no rows is not active: it takes no calls."""
    states = set(states)
    if len(states) == 1:
        return states.pop()
    return MIXED if states else INACTIVE


_HEALTH_RANK = {UP: 0, UNKNOWN: 1, SUSPECT: 2, DOWN: 3}


def worst_health(states):
    """The worst of health states (down, suspect, unknown, up); unknown when there are none."""
    return max(states, key=lambda s: _HEALTH_RANK.get(s, 1), default=UNKNOWN)


def server_health(rows):
    """Which of a server's rows speaks for its health: the index in `rows`, (admin_state, Health as
    known_health gives it) pairs, one per set; None with no rows. Its rows are one box, so the worst
    health any of them shows (down, suspect, unknown, up), among equally bad ones the first with a probe
    time to show. A row nothing measures (`unmeasured`: disabled) speaks only when every row is one:
    the box is probed through its other rows, and a disabled row's last health is nobody's word now."""
    measured = [i for i, (admin_state, _) in enumerate(rows) if not unmeasured(admin_state)]
    best = None
    for i in measured or range(len(rows)):
        health = rows[i][1]
        if best is None:
            best = i
            continue
        rank, best_rank = _HEALTH_RANK.get(health.state, 1), _HEALTH_RANK.get(rows[best][1].state, 1)
        if rank > best_rank or (rank == best_rank and rows[best][1].rtt_ms is None and health.rtt_ms is not None):
            best = i
    return best


def server_calls(calls):
    """A server's active calls from its rows' (each summed over the live proxies, None when no live
    proxy vouches for it): the sum, or None when any row's count is unknown."""
    total = 0
    for n in calls:
        if n is None:
            return None
        total += n
    return total


def drained(rows, *, reporting=True):
    """Whether a server is safe to restart, from its rows in every set as (admin state, calls: that
    row's count over every live proxy, None when unknown). True only when no set sends it new calls
    (no row active) and its calls, summed over every set, are 0. False while a row is active (a
    restart would drop the calls that set sends it next) or any known count is above 0, whatever
    else is unknown. Otherwise None (unknown, never "safe") while a row's count is unknown (a proxy
    that carried its calls stopped reporting, or restarted with calls up: unvouched_calls) or no
    proxy is `reporting` at all, so nobody vouches for the 0."""
    rows = list(rows)
    if any(state == ACTIVE for state, _ in rows):
        return False
    calls = [n for _, n in rows]
    if any(n for n in calls if n is not None):
        return False
    if not reporting or any(n is None for n in calls):
        return None
    return True
