"""A probe round, and the single probe the proxy asks for: claim, probe, record, release.

What is probed is a server (one SIP endpoint), once, however many sets list it; what is
recorded is every row of it, each fed the same outcome through the per-row state machine,
so a server's rows go up and down together and each keeps its own history.
"""

import asyncio
import logging
import secrets
import time

from django.core.exceptions import ValidationError

from dispatcher.choices import HealthState
from dispatcher.models import Destination, ProbeSettings
from dispatcher.ping_attrs import ping_attrs
from dispatcher.redis_client import get_redis
from dispatcher.services import record_suspect
from dispatcher.validators import parse_reply_codes
from lbcore import rules
from lbcore.contract import LAST_ROUND_KEY, PING_ACTIVE_KEY
from probes import claims
from probes.machine import Thresholds
from probes.prober import ProbeConfig, Target, by_server, probe_servers
from probes.recording import record
from sip.errors import SipSyntaxError
from sip.headers import is_token
from sip.uri import parse_wire_uri

try:
    import uvloop
except ImportError:  # uvloop is optional for the prober: a plain loop does the same work
    uvloop = None

log = logging.getLogger(__name__)

# The busy hold outlives the probe by this much, so recording finishes under it;
# a worker that dies mid-round frees its destinations after it.
HOLD_MARGIN_MS = 10_000


def run_async(coro):
    """Run the probes on a fresh loop (a task owns no loop between rounds); uvloop when present."""
    if uvloop is None:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def thresholds(settings):
    return Thresholds(
        probing=settings.probing_threshold,
        inactive=settings.inactive_threshold,
        reply_codes=parse_reply_codes(settings.ping_reply_codes),
    )


def row_reply_codes(settings, ids):
    """id -> the replies that count as alive for that row: 2xx, the probe settings' codes and its
    set's (DispatcherSet.ping_reply_codes; Kamailio has only the global ds_ping_reply_codes). A set's
    value saved before it was validated is left out, and the log says why."""
    codes, parsed = {}, {}
    for dest_id, set_codes in Destination.objects.filter(pk__in=ids).values_list("id", "dset__ping_reply_codes"):
        if set_codes not in parsed:
            try:
                parsed[set_codes] = parse_reply_codes(f"{settings.ping_reply_codes};{set_codes}")
            except ValidationError as exc:
                log.error("set ping_reply_codes %r: %s; using the probe settings' alone", set_codes, " ".join(exc.messages))
                parsed[set_codes] = parse_reply_codes(settings.ping_reply_codes)
        codes[dest_id] = parsed[set_codes]
    return codes


def _codes_of(settings, outcomes):
    return row_reply_codes(settings, [o.id for o in outcomes]) if outcomes else {}


def probe_config(settings):
    """The probe settings as sent. A value saved before it was validated (a method that is not a
    SIP token, a From that is not a sendable URI) must not stop every round: the default is used
    instead and the log says why, while the panel refuses to save such a value again."""
    method, from_uri = settings.ping_method, settings.ping_from
    default = ProbeConfig()
    if not is_token(method):
        log.error("ping_method %r is not a SIP method name: probing with OPTIONS until it is fixed in Probe settings", method)
        method = default.method
    try:
        parse_wire_uri(from_uri)
    except SipSyntaxError as exc:
        log.error(
            "ping_from %r cannot be sent (%s): probing from %s until it is fixed in Probe settings",
            from_uri,
            exc,
            default.from_uri,
        )
        from_uri = default.from_uri
    return ProbeConfig(from_uri=from_uri, method=method, timeout=settings.ping_timeout_ms / 1000)


def _rows(queryset, keep):
    """(id, uri, health, attrs) of the destinations in `queryset` that `keep(admin_state, probing, health, extra_flags)` accepts."""
    rows = queryset.values_list("id", "uri", "health", "attrs", "admin_state", "probing", "extra_flags")
    return [
        (dest_id, uri, health, attrs)
        for dest_id, uri, health, attrs, admin_state, probing, extra in rows
        if keep(admin_state, probing, health, extra)
    ]


def round_destinations(settings):
    """What a round probes: lbcore.rules.probed."""
    return _rows(
        Destination.objects.all(),
        lambda admin_state, probing, health, extra: rules.probed(admin_state, probing, settings.probing_mode, health, extra),
    )


def _target(dest_id, uri, parsed, attrs):
    """The probe of one row, with its ping_from and socket attributes (Kamailio's ds_ping_set). An
    attribute saved before it was validated is left out, and the log says why."""
    try:
        from_uri, sock = ping_attrs(attrs)
    except ValueError as exc:
        log.error("destination id=%s attrs %r: %s; probing it with the probe settings' From and socket", dest_id, attrs, exc)
        from_uri, sock = None, None
    if sock is not None and sock[0] != parsed.transport:
        log.warning("destination id=%s: socket %s:%s:%s is not %s like its URI; not used", dest_id, *sock, parsed.transport)
        sock = None
    return Target(dest_id, uri, parsed.host, parsed.effective_port, parsed.transport, from_uri, sock[1:] if sock else None)


def _targets(rows):
    targets, health = [], {}
    for dest_id, uri, state, attrs in rows:
        try:
            parsed = parse_wire_uri(uri)
        except SipSyntaxError as exc:
            log.warning("probe skipped: destination id=%s uri=%r is not a SIP URI that can be sent: %s", dest_id, uri, exc)
            continue
        targets.append(_target(dest_id, uri, parsed, attrs))
        health[dest_id] = state
    return targets, health


def _servers(targets, settings):
    """server key -> its targets (probes.prober.by_server)."""
    return run_async(by_server(targets, settings.ping_timeout_ms / 1000)) if targets else {}


def run_round(round_id=None):
    """Probe every server this worker can claim for `round_id` (a new round when None)."""
    started = time.perf_counter()
    r = get_redis()
    settings = ProbeSettings.load()
    if round_id is None:
        round_id = claims.new_round_id(r)
    targets, db_health = _targets(round_destinations(settings))
    servers = _servers(targets, settings)
    token = f"round:{round_id}:{secrets.token_hex(4)}"
    hold_ms = settings.ping_timeout_ms + HOLD_MARGIN_MS
    mine = claims.claim(r, round_id, list(servers), token=token, hold_ms=hold_ms)
    servers = {key: servers[key] for key in mine}
    try:
        probe_started = time.perf_counter()
        outcomes = run_async(probe_servers(servers, probe_config(settings))) if servers else []
        probe_s = time.perf_counter() - probe_started
        recorded = record(r, outcomes, thresholds(settings), db_health=db_health, row_codes=_codes_of(settings, outcomes))
    finally:
        claims.release(r, list(servers), token=token)
    r.set(LAST_ROUND_KEY, f"{time.time():.3f}")
    summary = {
        "round": round_id,
        "servers": len(servers),
        "probed": recorded.probed,
        "good": recorded.good,
        "transitions": [list(t) for t in recorded.transitions],
        "probe_s": round(probe_s, 4),
        "duration_s": round(time.perf_counter() - started, 4),
    }
    # A quiet round is DEBUG: one INFO line per round would bury what matters (issue 11); a change is INFO.
    log.log(
        logging.INFO if recorded.transitions else logging.DEBUG,
        "probe round=%s servers=%d probed=%d good=%d changes=%d probe_s=%.3f duration_s=%.3f",
        round_id,
        summary["servers"],
        summary["probed"],
        summary["good"],
        len(recorded.transitions),
        probe_s,
        summary["duration_s"],
    )
    return summary


def down_destinations():
    """The destinations probed between rounds: down, and not disabled."""
    return _rows(
        Destination.objects.filter(health=HealthState.DOWN),
        lambda admin_state, probing, health, extra: rules.probe_allowed(admin_state, extra),
    )


def run_recovery():
    """Probe the destinations that are down, between rounds.

    Kamailio probes a dead server only every ds_ping_interval, so a restarted Asterisk
    waits up to that long to get calls again; this closes the gap. The busy hold keeps it
    from overlapping a round's or probe_now's probe of the same server.
    """
    r = get_redis()
    settings = ProbeSettings.load()
    targets, db_health = _targets(down_destinations())
    servers = _servers(targets, settings)
    token = f"recovery:{secrets.token_hex(4)}"
    hold_ms = settings.ping_timeout_ms + HOLD_MARGIN_MS
    mine = {key: rows for key, rows in servers.items() if claims.hold(r, key, token=token, hold_ms=hold_ms)}
    if not mine:
        return {"probed": 0}
    try:
        outcomes = run_async(probe_servers(mine, probe_config(settings)))
        recorded = record(r, outcomes, thresholds(settings), db_health=db_health, row_codes=_codes_of(settings, outcomes))
    finally:
        claims.release(r, list(mine), token=token)
    if recorded.transitions:
        log.info("recovery probes=%d changes=%s", recorded.probed, recorded.transitions)
    return {"probed": recorded.probed, "transitions": [list(t) for t in recorded.transitions]}


def server_of(destination_id, settings):
    """(server key, targets of its rows that may be probed, their db health) for the server
    `destination_id` is a row of; (None, [], {}) when that row may not be probed."""
    allowed = lambda admin_state, probing, health, extra: rules.probe_allowed(admin_state, extra)  # noqa: E731
    own, _ = _targets(_rows(Destination.objects.filter(pk=destination_id), allowed))
    if not own:
        return None, [], {}
    # Its siblings are the rows at the same endpoint: only rows with its transport and port
    # can be, so only those are resolved.
    targets, db_health = _targets(_rows(Destination.objects.all(), allowed))
    targets = [t for t in targets if (t.transport, t.port) == (own[0].transport, own[0].port)]
    for key, rows in _servers(targets, settings).items():
        if any(t.id == destination_id for t in rows):
            return key, rows, {t.id: db_health[t.id] for t in rows}
    return None, [], {}


def probe_one(destination_id, reason=""):
    """Probe the server of one destination now (the proxy marked it suspect, saying `reason`)
    and record the outcome for every row of that server.

    If a round's probe of it is out, wait for that to be recorded first (bounded),
    then probe afresh: the suspect mark must be settled by a probe sent after it.
    """
    r = get_redis()
    if rules.probing_paused(r.get(PING_ACTIVE_KEY)):
        log.info("probe_now skipped: probing is paused (ping_active 0) destination=%s reason=%r", destination_id, reason)
        return {"probed": 0}
    settings = ProbeSettings.load()
    server, targets, db_health = server_of(destination_id, settings)
    if server is None:
        log.info("probe_now skipped: destination id=%s is disabled, deleted or unparsable", destination_id)
        return {"probed": 0}
    if reason:
        record_suspect(Destination(pk=destination_id), reason)
    token = f"now:{secrets.token_hex(4)}"
    hold_ms = settings.ping_timeout_ms + HOLD_MARGIN_MS
    deadline = time.monotonic() + settings.ping_timeout_ms / 1000 + 2.0
    while not claims.hold(r, server, token=token, hold_ms=hold_ms):
        if time.monotonic() >= deadline:
            log.warning(
                "probe_now gave up waiting: destination id=%s server %s still busy (reason=%r)", destination_id, server, reason
            )
            return {"probed": 0}
        time.sleep(0.01)
    try:
        outcomes = run_async(probe_servers({server: targets}, probe_config(settings)))
        recorded = record(
            r,
            outcomes,
            thresholds(settings),
            db_health=db_health,
            suspect_reason=reason,
            row_codes=_codes_of(settings, outcomes),
        )
    finally:
        claims.release(r, [server], token=token)
    outcome = outcomes[0]
    log.info(
        "probe_now destination=%s server=%s rows=%s uri=%s status=%r rtt_ms=%s changes=%s reason=%r",
        destination_id,
        server,
        ",".join(str(t.id) for t in targets),
        targets[0].uri,
        outcome.status,
        outcome.rtt_ms,
        recorded.transitions,
        reason,
    )
    return {
        "probed": recorded.probed,
        "server": server,
        "status": outcome.status,
        "transitions": [list(t) for t in recorded.transitions],
    }
