"""The one place that changes a destination's state or the configuration.

Every change writes PostgreSQL, records a StateEvent, and publishes to Redis
after commit, so the panel, the API, JSON-RPC and Celery all behave alike.
"""

import json
import logging
import time
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from dispatcher import kamailio_weight, publication, publisher
from dispatcher.choices import PROBE_PRESETS, AdminState, Cause, EventKind
from dispatcher.kamailio_list import DispatcherListError, LineError, compose_attrs, format_line, parse_line, parse_list
from dispatcher.models import ApiToken, Destination, DispatcherSet, ProbeSettings, ProxySettings, Server, StateEvent
from dispatcher.roles import ADMIN, OPERATOR, VIEWER, role_of
from lbcore import contract, rules
from sip.errors import SipSyntaxError

log = logging.getLogger(__name__)


def _publish_on_commit():
    publication.want_new_table()


def _actor(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --- admin state ---------------------------------------------------------------


@transaction.atomic
def set_state(dest, state, *, actor=None, cause=Cause.USER, reason=""):
    """Set a destination's admin state (kamcmd a/i/d). Returns the destination as it now is.

    A change to the same state records nothing and publishes nothing.
    """
    if state not in AdminState.values:
        raise ValueError(f"state must be one of {', '.join(AdminState.values)}, got {state!r}")
    # Lock the row so two operators clicking at once record two honest events.
    dest = Destination.objects.select_for_update().select_related("dset").get(pk=dest.pk)
    old = dest.admin_state
    if old == state:
        return dest
    dest.admin_state = state
    dest.save(update_fields=["admin_state", "updated"])
    StateEvent.objects.create(
        destination=dest,
        subject=_subject(dest),
        kind=EventKind.ADMIN,
        old=old,
        new=state,
        cause=cause,
        actor=_actor(actor),
        reason=reason,
    )
    log.warning("admin state %s %s -> %s cause=%s reason=%r", dest.uri, old, state, cause, reason)
    _publish_on_commit()
    return dest


def _subject(dest):
    return f"set {dest.dset.setid} {dest.uri}" + (f" ({dest.duid})" if dest.duid else "")


# --- destinations -----------------------------------------------------------------


def new_destination_weight(dset_pk):
    """The weight a new destination gets when nobody says (the panel's form starts with it, the API
    uses it when a POST has no weight): the weight most of the set's rows carry, 1 when there are
    none or the set is not known. Never the model's 0 by accident, which in a weighted set means a
    backup (calls only when every weighted row fails); a dispatcher.list line without weight= keeps
    Kamailio's 0 (import_dispatcher_list)."""
    weights = list(Destination.objects.filter(dset=dset_pk).values_list("weight", flat=True)) if str(dset_pk).isdigit() else []
    return max(set(weights), key=weights.count) if weights else 1


# --- servers ----------------------------------------------------------------------


def attach_server(dest):
    """The one rule that puts a destination on a server: the endpoint (transport, host, port) its URI
    names (lbcore.rules.server_endpoint), made when it is new. Destination.save calls it, so the
    panel's form, the API, the Django admin (all through save_config) and any ORM save agree; import
    puts its bulk rows on servers by the same rule (_servers_at). Returns the id of the server the row
    leaves, or None; Destination.save then settles both."""
    endpoint = _endpoint(dest.uri)
    if dest.server_id is not None and dest.server.endpoint == endpoint:
        return None
    previous = dest.server_id
    dest.server = _servers_at({endpoint: dest.duid})[endpoint]
    return previous


def _endpoint(uri):
    try:
        return rules.server_endpoint(uri)
    except SipSyntaxError as exc:
        raise ValidationError({"uri": str(exc)}) from None


def _servers_at(wanted):
    """endpoint -> Server for each of `wanted` (endpoint -> a DUID to name a new one by), making the
    missing ones in one statement; one query to read them whatever their number. A new server takes
    the first of its names (lbcore.rules.server_name_choices) no server holds."""

    def existing():
        # A big import reads every server rather than send thousands of hosts as parameters.
        found = Server.objects.all() if len(wanted) > 500 else Server.objects.filter(host__in={h for _, h, _ in wanted})
        return {s.endpoint: s for s in found if s.endpoint in wanted}

    servers = existing()
    for _attempt in range(3):
        missing = [e for e in wanted if e not in servers]
        if not missing:
            return servers
        taken = {rules.server_name_key(n) for n in Server.objects.values_list("name", flat=True)}
        names = rules.derive_server_names(((e, "", [wanted[e]], *e) for e in missing), taken)
        # ignore_conflicts: a server another change made meanwhile is read back, not made twice; one
        # whose name another change took meanwhile is missing still, and chooses again.
        Server.objects.bulk_create(
            [Server(transport=t, host=h, port=p, name=names[(t, h, p)]) for t, h, p in missing], ignore_conflicts=True
        )
        servers = existing()
    missing = [e for e in wanted if e not in servers]
    if missing:
        raise IntegrityError(f"Other changes kept taking the names of the new servers {', '.join(map(str, missing))}; try again.")
    return servers


def settle_servers(server_ids=None):
    """After rows were added, moved, renamed or removed (`server_ids`; None: every server): a server
    no row lists any more is deleted, and one no person named takes the name its rows now give it
    (the first of its choices no other server holds: lbcore.rules.derive_server_names).

    Deleted, not kept: a server is what the rows say. One with no rows takes no calls and cannot be
    put into maintenance, so listing it would only show a box that is "drained" because nothing
    routes to it. Its rows' deletion is in the audit log; a person's name for it is lost with it.
    """
    if server_ids is not None:
        server_ids = set(server_ids) - {None}
        if not server_ids:
            return
    servers = Server.objects.all() if server_ids is None else Server.objects.filter(pk__in=server_ids)
    orphans = servers.filter(destinations__isnull=True)
    for name in orphans.filter(name_edited=True).values_list("name", flat=True):
        log.info("server %s has no destinations left: deleted with its name", name)
    orphans.delete()
    duids = {}
    for server_id, duid in Destination.objects.filter(server__in=servers).values_list("server_id", "duid"):
        duids.setdefault(server_id, []).append(duid)
    derived = {s.pk: s for s in servers.filter(name_edited=False, pk__in=duids.keys()).order_by("pk")}
    if not derived:
        return
    taken = {rules.server_name_key(n) for n in Server.objects.exclude(pk__in=derived.keys()).values_list("name", flat=True)}
    names = rules.derive_server_names(((s.pk, s.name, duids[s.pk], *s.endpoint) for s in derived.values()), taken)
    renamed = [s for s in derived.values() if names[s.pk] != s.name]
    _rename_all(renamed, names)


def _rename_all(servers, names):
    """Give each of `servers` its name in `names` (pk -> name) in bulk. A name one of them leaves for
    another of them is first freed: the database checks the unique names row by row, so a swap in one
    statement would clash with itself. The placeholder holds a control character, which no name may."""
    now = timezone.now()
    wanted = {rules.server_name_key(names[s.pk]): s.pk for s in servers}
    passing = [s for s in servers if wanted.get(rules.server_name_key(s.name), s.pk) != s.pk]
    for server in passing:
        server.name = f"\x1frenaming {server.pk}"
    Server.objects.bulk_update(passing, ["name"], batch_size=1000)
    for server in servers:
        server.name, server.updated = names[server.pk], now
    Server.objects.bulk_update(servers, ["name", "updated"], batch_size=1000)


class ServerNameTaken(ValidationError):
    """A name another server has (ignoring case): the API answers it as a clash (409), naming the field."""

    def __init__(self, name, other):
        case = "" if other.name == name else f" (as {other.name!r}: names are compared without case)"
        super().__init__(
            {
                "name": f"Another server, {other.transport} {other.hostport}, is named {name!r}{case}: "
                "choose another name, or rename that server first."
            }
        )


def check_server_name_free(server, name):
    """Raises ServerNameTaken when a server other than `server` has `name`, whatever the case."""
    other = Server.objects.filter(name__iexact=name).exclude(pk=server.pk).first()
    if other is not None:
        raise ServerNameTaken(name, other)


@transaction.atomic
def rename_server(server, name, *, actor=None, cause=Cause.USER, reason=""):
    """Name a server (panel, API, admin); an import no longer renames it. An empty name gives it back
    the name its rows give it (the first of them no other server has). Names are unique whatever the
    case: a name another server has raises ServerNameTaken. Audited; nothing is published (the
    proxies route by id)."""
    server = Server.objects.select_for_update().get(pk=server.pk)
    before = {"name": server.name, "name_edited": server.name_edited}
    name = name.strip()
    if name:
        server.name, server.name_edited = name, True
    else:
        duids = list(server.destinations.values_list("duid", flat=True))
        taken = {rules.server_name_key(n) for n in Server.objects.exclude(pk=server.pk).values_list("name", flat=True)}
        names = rules.derive_server_names([(server.pk, server.name, duids, *server.endpoint)], taken)
        server.name, server.name_edited = names[server.pk], False
    server.full_clean(validate_constraints=False)
    check_server_name_free(server, server.name)
    try:
        with transaction.atomic():
            server.save(update_fields=["name", "name_edited", "updated"])
    except IntegrityError:
        # Another change gave the name to another server since the check: say which.
        check_server_name_free(server, server.name)
        raise
    after = {"name": server.name, "name_edited": server.name_edited}
    if before != after:
        _config_event(
            f"renamed server {server.hostport}",
            before,
            after,
            actor=actor,
            cause=cause,
            reason=reason,
            old=before["name"],
            new=server.name,
        )
    return server


def _row_label(dest, rows):
    # A set lists a box once, as a rule; when it lists it under two URIs, each row is named.
    twice = sum(1 for d in rows if d.dset_id == dest.dset_id) > 1
    return f"set {dest.dset.setid}" + (f" {dest.uri}" if twice else "")


@transaction.atomic
def set_server_state(server, state, *, actor=None, cause=Cause.USER, reason=""):
    """Maintenance (inactive), Disable or Return (active) for a whole server: every set's row at once,
    in one transaction, one audit entry (its before/after: each set's state; its subject: the sets
    touched) and one publish. Rows already in `state` are left alone; when all are, nothing is
    recorded or published. Per row, set_state still applies (Kamailio's dispatcher.set_state names
    one set). Returns the server."""
    if state not in AdminState.values:
        raise ValueError(f"state must be one of {', '.join(AdminState.values)}, got {state!r}")
    # Locked, rows too: two operators acting at once record two honest events.
    server = Server.objects.select_for_update().get(pk=server.pk)
    rows = list(server.destinations.select_for_update().select_related("dset").order_by("dset__setid", "id"))
    touched = [d for d in rows if d.admin_state != state]
    if not touched:
        return server
    before = {_row_label(d, rows): d.admin_state for d in rows}
    Destination.objects.filter(pk__in=[d.pk for d in touched]).update(admin_state=state, updated=timezone.now())
    after = {**before, **{_row_label(d, rows): state for d in touched}}
    sets = sorted({d.dset.setid for d in touched})
    StateEvent.objects.create(
        server=server,
        subject=f"server {server.name} ({server.hostport}) in set{'s' if len(sets) > 1 else ''} {', '.join(map(str, sets))}",
        kind=EventKind.ADMIN,
        old=rules.server_admin_state(before.values()),
        new=state,
        before=before,
        after=after,
        cause=cause,
        actor=_actor(actor),
        reason=reason,
    )
    log.warning("admin state server %s %s -> %s sets=%s cause=%s reason=%r", server.name, before, state, sets, cause, reason)
    _publish_on_commit()
    return server


# --- health ----------------------------------------------------------------------


def change_health(dest, health, *, cause=Cause.PROBE, reason="", actor=None, observed=None):
    """Record a health transition: DB row + StateEvent, then lb:health and the event after commit.

    `health` is a lbcore.contract.Health. Returns True when the state changed.
    `observed` is the state the caller saw live in lb:health, when it has one: the proxy
    marks a destination suspect in Redis only (it never touches the ORM), so the probe
    that settles a suspect is a change even though the row already holds the new state.
    """
    with transaction.atomic():
        dest = Destination.objects.select_for_update().select_related("dset").get(pk=dest.pk)
        old = observed if observed not in (None, health.state) else dest.health
        changed = old != health.state
        if changed:
            if dest.health != health.state:
                dest.health = health.state
                dest.health_changed = timezone.now()
                dest.save(update_fields=["health", "health_changed"])
            StateEvent.objects.create(
                destination=dest,
                subject=_subject(dest),
                kind=EventKind.HEALTH,
                old=old,
                new=health.state,
                cause=cause,
                actor=_actor(actor),
                reason=reason or health.reason,
            )
            log.warning("health %s %s -> %s cause=%s reason=%r", dest.uri, old, health.state, cause, reason or health.reason)
            transaction.on_commit(lambda: publisher.publish_health(dest.pk, health))
        else:
            transaction.on_commit(lambda: publisher.store_health(dest.pk, health))
    return changed


def record_suspect(dest, reason, *, cause=Cause.PROXY):
    """Audit a proxy's suspect mark. The proxy wrote lb:health itself (it never touches the
    ORM); this row makes the mark visible in the history, before the probe that settles it."""
    dest = Destination.objects.select_related("dset").get(pk=dest.pk)
    StateEvent.objects.create(
        destination=dest,
        subject=_subject(dest),
        kind=EventKind.HEALTH,
        old=dest.health,
        new="suspect",
        cause=cause,
        reason=reason,
    )


# --- configuration -----------------------------------------------------------------


def _config_event(subject, before, after, *, actor, cause, reason="", destination=None, old=None, new=None):
    _event(subject, before, after, actor=actor, cause=cause, reason=reason, destination=destination, old=old, new=new).save()


def _event(subject, before, after, *, actor, cause, kind=EventKind.CONFIG, reason="", destination=None, old=None, new=None):
    """An unsaved StateEvent (import bulk-creates them). A configuration change keeps `before` and
    `after` whole (None: created, deleted); old/new are short text for people and filters, by default
    the snapshots' summary, cut to the column with a visible mark."""
    old = _summary(before) if old is None else old
    new = _summary(after) if new is None else new
    return StateEvent(
        destination=destination,
        subject=subject,
        kind=kind,
        old=_clip(old),
        new=_clip(new),
        before=before,
        after=after,
        cause=cause,
        actor=_actor(actor),
        reason=reason,
    )


def _clip(text, limit=255):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(instance):
    if isinstance(instance, Destination):
        return _subject(instance)
    return str(instance)


def _snapshot(instance):
    """Every field people set, as the JSON the audit keeps (a set by its id, times as ISO text)."""
    skip = {"id", "created", "updated", "health", "health_changed", "server"}
    return _as_json({f.name: f.value_from_object(instance) for f in instance._meta.concrete_fields if f.name not in skip})


def _as_json(values):
    # As it reads back from the JSONField, so a snapshot compares equal to a stored one.
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def _summary(snapshot):
    return ", ".join(f"{k}={v}" for k, v in snapshot.items()) if snapshot else ""


@transaction.atomic
def save_config(instance, *, actor=None, cause=Cause.USER, reason=""):
    """Validate and save a set, destination, source rule or settings row; audit it; publish after commit.

    Raises django ValidationError (with field names) when the instance is invalid.
    A destination's admin state change is recorded as a state change, as set_state would.
    """
    # A destination's server is derived from its URI when it is saved, not validated as input.
    instance.full_clean(exclude=["server"] if isinstance(instance, Destination) else None)
    model = type(instance)
    before = model.objects.filter(pk=instance.pk).first() if instance.pk else None
    if isinstance(instance, Destination):
        instance.attrs = compose_attrs(
            instance.attrs, weight=instance.weight, rweight=instance.rweight, duid=instance.duid, maxload=instance.maxload
        )
    instance.save()
    old = _snapshot(before) if before else None
    new = _snapshot(instance)
    if old != new:
        verb = "updated" if before else "created"
        dest = instance if isinstance(instance, Destination) else None
        _config_event(
            f"{verb} {model._meta.verbose_name} {_describe(instance)}",
            old,
            new,
            actor=actor,
            cause=cause,
            reason=reason,
            destination=dest,
        )
        if dest is not None and before is not None and before.admin_state != instance.admin_state:
            StateEvent.objects.create(
                destination=dest,
                subject=_subject(dest),
                kind=EventKind.ADMIN,
                old=before.admin_state,
                new=instance.admin_state,
                cause=cause,
                actor=_actor(actor),
                reason=reason,
            )
        _publish_on_commit()
    return instance


@transaction.atomic
def delete_config(instance, *, actor=None, cause=Cause.USER, reason=""):
    """Delete a set, destination or source rule, audited, and publish after commit.

    A set goes by delete_set's rule: raises SetInUse, and nothing changes, when something still uses it.
    """
    if isinstance(instance, DispatcherSet):
        delete_set(instance, actor=actor, cause=cause, reason=reason)
    else:
        _delete_audited(instance, actor=actor, cause=cause, reason=reason)
    _publish_on_commit()


def _delete_audited(instance, *, actor, cause, reason):
    subject = f"deleted {type(instance)._meta.verbose_name} {_describe(instance)}"
    old = _snapshot(instance)
    instance.delete()
    _config_event(subject, old, None, actor=actor, cause=cause, reason=reason)


class SetInUse(Exception):
    """A set something still uses is not deleted. The API answers 409, the panel and the admin say
    why, an import --replace keeps the set and says so."""

    def __init__(self, dset, reasons):
        super().__init__(" ".join(reasons))
        self.dset, self.reasons = dset, reasons


def why_set_stays(dset):
    """What keeps `dset` from being deleted, one sentence each; empty when it may go."""
    reasons = []
    if ProxySettings.objects.filter(pk=1, default_set=dset).exists():
        reasons.append(f"Set {dset.setid} is the default set in the proxy settings; choose another default first.")
    rules = list(dset.source_rules.values_list("network", flat=True))
    if rules:
        reasons.append(f"Source rules send traffic to set {dset.setid} ({', '.join(rules)}); delete or move them first.")
    count = dset.destinations.count()
    if count:
        reasons.append(f"Set {dset.setid} still has {count} destination(s); delete or move them first.")
    return reasons


@transaction.atomic
def delete_set(dset, *, actor=None, cause=Cause.USER, reason=""):
    """Delete a dispatcher set by the one rule every caller follows (API, panel, admin, import --replace):
    a set that is the default set, that source rules send traffic to, or that still has destinations
    stays, and SetInUse says why. Deleting never takes destinations or rules with it, so no call is cut
    by a set going. The caller publishes (delete_config does)."""
    # Locked: a rule, destination or default pointing at the set waits for this transaction, so the check holds.
    dset = DispatcherSet.objects.select_for_update().get(pk=dset.pk)
    reasons = why_set_stays(dset)
    if reasons:
        raise SetInUse(dset, reasons)
    _delete_audited(dset, actor=actor, cause=cause, reason=reason)


def apply_probe_preset(name, *, actor=None, cause=Cause.USER):
    preset = PROBE_PRESETS[name]
    settings = ProbeSettings.load()
    settings.ping_interval = preset["ping_interval"]
    settings.probing_threshold = preset["probing_threshold"]
    return save_config(settings, actor=actor, cause=cause, reason=f"preset {name}")


# --- dispatcher.list import / export -------------------------------------------------


@dataclass
class ImportResult:
    changes: list = field(default_factory=list)
    kept: list = field(default_factory=list)  # sets --replace would delete but something still uses (delete_set's rule)
    warnings: list = field(default_factory=list)  # lines a Kamailio would read differently (kamailio_weight)
    dry_run: bool = False
    version: int | None = None

    @property
    def changed(self):
        return bool(self.changes)


class _DryRun(Exception):
    pass


def _state_from_flags(flags):
    if flags & contract.FLAG_DISABLED:
        return AdminState.DISABLED.value
    if flags & contract.FLAG_INACTIVE:
        return AdminState.INACTIVE.value
    return AdminState.ACTIVE.value


def _entry_fields(entry):
    known = contract.FLAG_INACTIVE | contract.FLAG_DISABLED | contract.FLAG_PROBING
    return {
        "priority": entry.priority,
        "weight": entry.values.get("weight", 0),
        "rweight": entry.values.get("rweight", 0),
        "duid": entry.values.get("duid", ""),
        "maxload": entry.values.get("maxload", 0),
        "attrs": entry.attrs,
        "extra_flags": entry.flags & ~known & ~contract.FLAG_TRYING,
        "admin_state": _state_from_flags(entry.flags),
        "probing": bool(entry.flags & contract.FLAG_PROBING),
    }


def import_dispatcher_list(text, *, replace=False, dry_run=False, actor=None, cause=Cause.IMPORT):
    """Apply a dispatcher.list: all or nothing. Raises kamailio_list.DispatcherListError naming each bad line.

    Without `replace`, entries are added or updated by (set, URI) and nothing is removed;
    with it, the table becomes exactly the file. `dry_run` returns the changes and writes nothing.
    """
    entries = parse_list(text)
    result = ImportResult(dry_run=dry_run)
    result.warnings = [
        f"line {e.lineno}: {kamailio_weight.weight_problem(e.values['weight'])}"
        for e in entries
        if kamailio_weight.outside_kamailio(e.values.get("weight", 0))
    ]
    try:
        with transaction.atomic():
            _apply_entries(entries, replace, result, actor, cause)
            if dry_run:
                raise _DryRun
            if result.changed:
                _publish_on_commit()
    except _DryRun:
        pass
    return result


def _apply_entries(entries, replace, result, actor, cause):
    # A constant number of queries whatever the file's length: everything is read once and written in
    # bulk, so 20,000 lines take seconds, not a query or three per line (which ran past gunicorn's timeout).
    sets = {s.setid: s for s in DispatcherSet.objects.all()}
    existing = {(d.dset_id, d.uri): d for d in Destination.objects.select_related("dset")}
    duids = {(d.dset_id, d.duid): d for d in existing.values() if d.duid}
    new_sets = [DispatcherSet(setid=setid) for setid in dict.fromkeys(e.setid for e in entries) if setid not in sets]
    DispatcherSet.objects.bulk_create(new_sets)  # parse_list checked the set ids' range
    for dset in new_sets:
        sets[dset.setid] = dset
        result.changes.append(f"+ set {dset.setid}")
    events = [_event(f"created dispatcher set {dset}", None, _snapshot(dset), actor=actor, cause=cause) for dset in new_sets]
    created, updated, seen = [], [], set()
    for entry in entries:
        dset = sets[entry.setid]
        wanted = _entry_fields(entry)
        dest = existing.get((dset.pk, entry.uri))
        if dest is None:
            dest = Destination(dset=dset, uri=entry.uri, **wanted)
            _check_imported(dest, entry, duids)
            created.append(dest)
            result.changes.append(f"+ {format_line(entry.setid, entry.uri, entry.flags, entry.priority, entry.attrs)}")
            continue
        seen.add(dest.pk)
        diffs = [f"{k} {getattr(dest, k)!r} → {v!r}" for k, v in wanted.items() if getattr(dest, k) != v]
        if diffs:
            old_state, old_snapshot = dest.admin_state, _snapshot(dest)
            for key, value in wanted.items():
                setattr(dest, key, value)
            _check_imported(dest, entry, duids)
            updated.append(dest)
            result.changes.append(f"~ set {entry.setid} {entry.uri}: " + ", ".join(diffs))
            events.append(
                _event(
                    f"updated destination {_subject(dest)}",
                    old_snapshot,
                    _snapshot(dest),
                    actor=actor,
                    cause=cause,
                    destination=dest,
                )
            )
            if old_state != dest.admin_state:
                events.append(
                    _event(
                        _subject(dest),
                        None,
                        None,
                        old=old_state,
                        new=dest.admin_state,
                        kind=EventKind.ADMIN,
                        actor=actor,
                        cause=cause,
                        reason="dispatcher.list import",
                        destination=dest,
                    )
                )
    if replace:
        gone = [d for d in existing.values() if d.pk not in seen]
        for dest in gone:
            result.changes.append(f"- set {dest.dset.setid} {dest.uri}")
            events.append(_event(f"deleted destination {_subject(dest)}", _snapshot(dest), None, actor=actor, cause=cause))
        Destination.objects.filter(pk__in=[d.pk for d in gone]).delete()
    if updated:
        now = timezone.now()
        for dest in updated:
            dest.updated = now
        Destination.objects.bulk_update(updated, [*_entry_fields_names(), "updated"], batch_size=1000)
    if created:
        servers = _servers_at({_endpoint(d.uri): d.duid for d in created})
        for dest in created:
            dest.server = servers[_endpoint(dest.uri)]
    Destination.objects.bulk_create(created, batch_size=1000)
    settle_servers()  # names from the rows as they now are; a server --replace left without rows goes
    events.extend(
        _event(f"created destination {_subject(d)}", None, _snapshot(d), actor=actor, cause=cause, destination=d) for d in created
    )
    StateEvent.objects.bulk_create(events, batch_size=1000)
    if replace:
        wanted_sets = {e.setid for e in entries}
        for setid, dset in sets.items():
            if setid in wanted_sets:
                continue
            try:
                delete_set(dset, actor=actor, cause=cause)
            except SetInUse as exc:
                result.kept.append(f"= set {setid} kept: {exc}")
            else:
                result.changes.append(f"- set {setid}")


def _entry_fields_names():
    return ("priority", "weight", "rweight", "duid", "maxload", "attrs", "extra_flags", "admin_state", "probing")


def _check_imported(dest, entry, duids):
    """Field validation per line; uniqueness against the table from the map read once (the file
    itself was checked by parse_list), so no query per line."""
    problems = {}
    try:
        # dset excluded: ForeignKey.validate asks the database whether the set exists, once per line.
        dest.full_clean(exclude=["dset", "server"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        problems = exc.message_dict
    other = duids.get((dest.dset.pk, dest.duid)) if dest.duid else None
    if other is not None and other.uri != dest.uri:
        problems.setdefault("duid", []).append(f"{other.uri} in set {entry.setid} already has DUID {dest.duid!r}.")
    if problems:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items())
        raise DispatcherListError(
            [LineError(entry.lineno, format_line(entry.setid, entry.uri, entry.flags, entry.priority, entry.attrs), detail)]
        )


def export_dispatcher_list(*, anyway=False):
    """The current table in dispatcher.list format, one line per destination, by set.

    Raises kamailio_weight.KamailioWeightRefused naming each line whose weight a Kamailio would
    ignore (outside 1-100), unless `anyway`.
    """
    lines = ["# setid destination flags priority attrs", f"# exported by lbpanel {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    weights = []
    for dest in Destination.objects.select_related("dset").order_by("dset__setid", "id"):
        attrs = compose_attrs(dest.attrs, weight=dest.weight, rweight=dest.rweight, duid=dest.duid, maxload=dest.maxload)
        lines.append(format_line(dest.dset.setid, dest.uri, dest.flags, dest.priority, attrs))
        weights.append((len(lines), lines[-1], dest.weight))
    refused = [] if anyway else kamailio_weight.check_export(weights)
    if refused:
        raise kamailio_weight.KamailioWeightRefused(refused)
    return "\n".join(lines) + "\n"


@transaction.atomic
def add_listed_destination(line, *, actor=None, cause=Cause.API, reason=""):
    """One dispatcher.list line (`setid uri [flags [priority [attrs]]]`) added to the table, as
    JSON-RPC dispatcher.add gives it: read as an import reads it, validated and audited as every
    save is (save_config); a set it names that does not exist is created, as Kamailio does.
    Raises ValueError (the line) or ValidationError (a field) saying what is wrong."""
    entry = parse_line(1, line)
    if entry is None:
        raise ValueError("the destination is empty")
    dset = DispatcherSet.objects.filter(setid=entry.setid).first()
    if dset is None:
        dset = save_config(DispatcherSet(setid=entry.setid), actor=actor, cause=cause, reason=reason)
    if Destination.objects.filter(dset=dset, uri=entry.uri).exists():
        raise ValidationError({"uri": f"{entry.uri} is already in set {entry.setid}."})
    return save_config(Destination(dset=dset, uri=entry.uri, **_entry_fields(entry)), actor=actor, cause=cause, reason=reason)


def remove_listed_destination(setid, uri, *, actor=None, cause=Cause.API, reason=""):
    """Delete the destination `uri` of set `setid` (the URI as listed, case aside), audited; the set
    stays (delete_set's rule). Raises Destination.DoesNotExist when there is none."""
    dest = Destination.objects.select_related("dset").get(dset__setid=setid, uri__iexact=uri)
    delete_config(dest, actor=actor, cause=cause, reason=reason)
    return dest


def republish(*, with_health=True):
    """Publish the whole table again, and the last known health, for a Redis that was flushed."""
    version = publisher.publish_table()
    if with_health:
        known = publisher.read_health()
        for dest in Destination.objects.exclude(pk__in=known.keys()):
            publisher.store_health(
                dest.pk,
                contract.Health(state=dest.health, since=dest.health_changed.timestamp() if dest.health_changed else time.time()),
            )
    return version


# --- people, their passwords and tokens ----------------------------------------------------

ROLE_GROUPS = (VIEWER, OPERATOR, ADMIN)


def account_state(person):
    """What an account can do, as the audit log and the users page say it: role, superuser, active."""
    person._lbpanel_role = False  # drop the cached role
    # role_of says None for an inactive account; the log still says which role it would have.
    role = "superuser" if person.is_superuser else role_of(person) or _group_role(person)
    return f"{role or 'no role'}{'' if person.is_active else ' (deactivated)'}"


def _group_role(person):
    names = set(person.groups.values_list("name", flat=True)) if person.pk else set()
    return next((r for r in (ADMIN, OPERATOR, VIEWER) if r in names), None)


def _may_change(actor, person):
    # A superuser can do what no role can (the Django admin, every model): only another superuser
    # may demote or deactivate one. No actor means a command run on the host, which may.
    actor = _actor(actor)
    if person.is_superuser and actor is not None and not actor.is_superuser:
        raise PermissionDenied(f"{person.username} is a superuser; only a superuser can change their role or deactivate them.")


@transaction.atomic
def set_user_role(person, role, *, active=True, actor=None, cause=Cause.USER, created=False):
    """A user holds exactly one role group; every change of role or activity is audited.

    A superuser given any role but admin stops being a superuser, so the role is what the account
    can do. Raises PermissionDenied when a non-superuser tries to change a superuser.
    """
    if role not in ROLE_GROUPS:
        raise ValueError(f"role must be one of {', '.join(ROLE_GROUPS)}, got {role!r}")
    _may_change(actor, person)
    old = "" if created else account_state(person)
    groups = {g.name: g for g in (Group.objects.get_or_create(name=name)[0] for name in ROLE_GROUPS)}
    person.groups.remove(*groups.values())
    person.groups.add(groups[role])
    if person.is_superuser and role != ADMIN:
        person.is_superuser = person.is_staff = False
    person.is_active = active
    person.save(update_fields=["is_active", "is_superuser", "is_staff"])
    new = account_state(person)
    if old != new:
        _config_event(
            f"{'created' if created else 'updated'} user {person.username}",
            _account(old),
            _account(new),
            actor=actor,
            cause=cause,
            old=old,
            new=new,
        )
    return person


@transaction.atomic
def create_user(username, password, role, *, actor=None, cause=Cause.USER):
    """A new account holding `role`. dispatcher.signals records the creation, as for an account made
    by manage.py or the Django admin; the role is recorded as set_user_role records any role."""
    person = get_user_model()(username=username)
    person.set_password(password)
    person._lbpanel_actor = _actor(actor)
    person.save()
    return set_user_role(person, role, actor=actor, cause=cause)


def record_account_change(person, before, *, actor=None, cause=Cause.USER, reason=""):
    """A change made outside set_user_role (the Django admin's own form): `before` is account_state then."""
    after = account_state(person)
    _config_event(
        f"updated user {person.username}",
        _account(before),
        _account(after),
        actor=actor,
        cause=cause,
        reason=reason,
        old=before,
        new=after,
    )


def record_user_created(person, *, actor=None, cause=Cause.USER, reason=""):
    """Called for every new account (dispatcher.signals), however it was made."""
    state = account_state(person)
    _config_event(
        f"created user {person.username}", None, _account(state), actor=actor, cause=cause, reason=reason, old="", new=state
    )


def record_password_changed(person, *, actor=None, cause=Cause.USER, reason=""):
    """Called whenever a password is set (dispatcher.signals); the audit row never holds the password."""
    _config_event(
        f"changed password of user {person.username}",
        {"password": "old"},
        {"password": "new"},
        actor=actor,
        cause=cause,
        reason=reason,
        old="",
        new="password changed",
    )


def _account(state):
    return {"account": state} if state else None


def _token_snapshot(token):
    # Not the key's hash: the audit says who had which token, not how to recognise its key.
    fields = ("prefix", "name", "write_enabled", "allowed_networks", "expires", "revoked")
    return _as_json({f: getattr(token, f) for f in fields})


def _token_summary(token):
    parts = ["read-write" if token.write_enabled else "read-only"]
    if token.allowed_networks:
        parts.append(f"from {token.allowed_networks}")
    parts.append(f"expires {token.expires.isoformat(timespec='minutes')}" if token.expires else "no expiry")
    if token.name:
        parts.append(f"name {token.name!r}")
    return ", ".join(parts)


@transaction.atomic
def issue_token(user, *, actor=None, cause=Cause.USER, reason="", name="", write_enabled=True, allowed_networks="", expires=None):
    """A new API token for `user`, audited; returns (token, key). The key is never stored or logged."""
    token = ApiToken(user=user, name=name, write_enabled=write_enabled, allowed_networks=allowed_networks, expires=expires)
    key = token.set_new_key()
    token.full_clean()
    token.save()
    _config_event(
        f"issued API token {token.prefix}… of {user.username}",
        None,
        _token_snapshot(token),
        actor=actor,
        cause=cause,
        reason=reason,
        old="",
        new=_token_summary(token),
    )
    return token, key


@transaction.atomic
def update_token(token, *, actor=None, cause=Cause.USER, reason=""):
    """Save an edited token (name, write access, networks, expiry), audited."""
    before = ApiToken.objects.get(pk=token.pk)
    token.full_clean()
    token.save()
    if _token_summary(before) != _token_summary(token):
        _config_event(
            f"updated API token {token.prefix}… of {token.user.username}",
            _token_snapshot(before),
            _token_snapshot(token),
            actor=actor,
            cause=cause,
            reason=reason,
            old=_token_summary(before),
            new=_token_summary(token),
        )
    return token


@transaction.atomic
def revoke_token(token, *, actor=None, cause=Cause.USER, reason=""):
    """Revoked, not deleted: the row keeps who had which token. Returns False if it already was."""
    before = _token_snapshot(token)
    if not ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=timezone.now()):
        return False
    token.refresh_from_db(fields=["revoked"])
    _config_event(
        f"revoked API token {token.prefix}… of {token.user.username}",
        before,
        _token_snapshot(token),
        actor=actor,
        cause=cause,
        reason=reason,
        old=_token_summary(token),
        new="revoked",
    )
    return True


def set_ping_active(active, *, actor=None, cause=Cause.API, reason=""):
    """Pause (False) or resume (True) probing, as Kamailio's dispatcher.ping_active. Returns the old value."""
    r = publisher.get_redis()
    old = not rules.probing_paused(r.get(contract.PING_ACTIVE_KEY))
    r.set(contract.PING_ACTIVE_KEY, "1" if active else "0")
    if old != active:
        _config_event(
            "probing (dispatcher.ping_active)",
            {"ping_active": old},
            {"ping_active": active},
            actor=actor,
            cause=cause,
            reason=reason,
            old=str(int(old)),
            new=str(int(active)),
        )
        log.warning("probing %s by %s", "resumed" if active else "paused", actor)
    return old
