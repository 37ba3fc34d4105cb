"""Kamailio-compatible JSON-RPC 2.0 at POST /rpc: the dispatcher.* commands kamcmd and jsonrpcs scripts use.

Params are positional as kamcmd takes them, results and faults have Kamailio's shapes and texts
(fault code 500 "Invalid Parameters", "State Update Failed", ...), with a `data` member that says
which parameter is wrong. Protocol errors use the JSON-RPC codes (-32700, -32600, -32601).
Authentication failures answer HTTP 401 and role/token refusals HTTP 403, with a JSON-RPC error body;
a body refused before it is read (too large, nested too deeply) is HTTP 400;
every other error is HTTP 200, as JSON-RPC over HTTP clients expect.
"""

import json
import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatcher import publication, services
from dispatcher.api.auth import AUTHENTICATION, is_read_only_token
from dispatcher.choices import AdminState, Cause
from dispatcher.kamailio_hash import ds_get_hash
from dispatcher.kamailio_list import parse_attrs
from dispatcher.live import rtt_samples, snapshot
from dispatcher.models import Destination, DispatcherSet, ProbeSettings
from dispatcher.redis_client import get_redis
from dispatcher.roles import ADMIN, OPERATOR, VIEWER, has_role
from lbcore import contract, rules
from lbcore.hashing import rendezvous

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND = -32700, -32600, -32601
FAULT = 500  # Kamailio's rpc->fault code for everything a command rejects


class RpcError(Exception):
    def __init__(self, code, message, data=None, http_status=status.HTTP_200_OK):
        super().__init__(message)
        self.code, self.message, self.data, self.http_status = code, message, data, http_status

    def body(self, request_id):
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "error": error, "id": request_id}


def invalid_params(why):
    return RpcError(FAULT, "Invalid Parameters", why)


# --- commands ------------------------------------------------------------------------------------

METHODS = {}


def command(name, *, role=VIEWER, writes=False):
    """Register a dispatcher.* command; `writes` ones need a write-enabled token and `role`."""

    def register(func):
        METHODS[name] = (func, role, writes)
        return func

    return register


def _int_param(params, index, name):
    try:
        value = params[index]
    except IndexError:
        raise invalid_params(f"parameter {index + 1} ({name}) is missing") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or (isinstance(value, str) and not value.strip().lstrip("-").isdigit())
    ):
        raise invalid_params(f"parameter {index + 1} ({name}) must be an integer, got {value!r}")
    return int(value)


def _str_param(params, index, name):
    try:
        value = params[index]
    except IndexError:
        raise invalid_params(f"parameter {index + 1} ({name}) is missing") from None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise invalid_params(f"parameter {index + 1} ({name}) must be a string, got {value!r}")
    return str(value)


def _attrs(dest, health):
    named = {key.lower(): value for key, value in parse_attrs(dest.attrs)}
    return {
        "BODY": dest.attrs,
        "DUID": dest.duid,
        "PROBING_COUNT": health.fails if health else 0,
        "MAXLOAD": dest.maxload,
        "WEIGHT": dest.weight,
        "RWEIGHT": dest.rweight,
        "SOCKET": named.get("socket") or "",
        "SOCKNAME": named.get("sockname") or "",
        "OBPROXY": named.get("obproxy") or "",
        # Overload control is not implemented: Kamailio's defaults for a destination without oc attributes.
        "OCMIN": 0,
        "OCMAX": 100,
    }


def _latency(samples):
    rtts = [s["rtt_ms"] for s in samples if s.get("rtt_ms") is not None]
    timeouts = sum(1 for s in samples if s.get("rtt_ms") is None)
    if not rtts:
        return {"AVG": 0.0, "STD": 0.0, "EST": 0.0, "MAX": 0, "TIMEOUT": timeouts}
    avg = sum(rtts) / len(rtts)
    std = (sum((r - avg) ** 2 for r in rtts) / len(rtts)) ** 0.5
    return {"AVG": round(avg, 3), "STD": round(std, 3), "EST": round(rtts[-1], 3), "MAX": int(max(rtts)), "TIMEOUT": timeouts}


@command("dispatcher.list")
def dispatcher_list(request, params):
    """`dispatcher.list [short|full]`. Normal mode is Kamailio's output with ds_ping_latency_stats off;
    `full` adds HOST/IPADDR/PORT/PROTOID, LATENCY (we always keep probe RTTs) and RUNTIME.DLGLOAD (active calls)."""
    mode = str(params[0]).lower() if params else "normal"
    probing_mode = ProbeSettings.load().probing_mode
    snap = snapshot()
    records = []
    by_set = {}
    for dest in Destination.objects.select_related("dset").order_by("dset__setid", "-priority", "id"):
        by_set.setdefault(dest.dset.setid, []).append(dest)
    # Kamailio has no empty sets: a set exists because the list has a line for it.
    for setid, dests in by_set.items():
        targets = []
        for dest in dests:
            health = rules.known_health(dest.admin_state, rules.effective_health(snap.health.get(dest.id), dest.health))
            state = health.state
            # P when the next round probes it: the round reads the row's health, as here.
            probed = rules.probed(dest.admin_state, dest.probing, probing_mode, dest.health, dest.extra_flags)
            doc = {
                "URI": dest.uri,
                "FLAGS": rules.rpc_flags(dest.admin_state, state, probed, dest.extra_flags),
                "PRIORITY": dest.priority,
            }
            if mode == "full":
                uri = dest.parsed_uri
                doc.update(
                    {
                        "HOST": uri.host,
                        "IPADDR": uri.host,
                        "PORT": uri.effective_port,
                        "PROTOID": {"tcp": 2, "tls": 3}.get(uri.transport, 1),  # Kamailio PROTO_UDP, PROTO_TCP, PROTO_TLS
                    }
                )
            if (mode != "short" and dest.attrs) or mode == "full":
                doc["ATTRS"] = _attrs(dest, health)
            if mode == "full":
                doc["LATENCY"] = _latency(rtt_samples(dest.id))
                calls = snap.for_destination(dest.id)
                # no DLGLOAD rather than a 0 no live proxy vouches for: a script must not read "drained"
                doc["RUNTIME"] = {"DLGLOAD_UNKNOWN": calls.unknown_reason} if calls.unvouched else {"DLGLOAD": calls.active}
            targets.append({"DEST": doc})
        records.append({"SET": {"ID": setid, "TARGETS": targets}})
    if not records:
        raise RpcError(FAULT, "No Destination Sets")
    return {"NRSETS": len(records), "RECORDS": records}


STATE_LETTERS = {
    "0": AdminState.INACTIVE,
    "i": AdminState.INACTIVE,
    "1": AdminState.ACTIVE,
    "a": AdminState.ACTIVE,
    "2": AdminState.DISABLED,
    "d": AdminState.DISABLED,
}


def _state_param(params):
    text = _str_param(params, 0, "state")
    if not text:
        raise RpcError(FAULT, "Invalid State Parameter", "parameter 1 (state) is empty")
    first = text[0].lower()
    if first in ("3", "t"):
        raise RpcError(FAULT, "Unknown State Value", "T (trying) is set by the proxies and probes; use a, i or d")
    if first not in STATE_LETTERS:
        raise RpcError(FAULT, "Unknown State Value", f"parameter 1 (state) must be a, i or d (or 1, 0, 2), got {text!r}")
    # A trailing P (e.g. "ip") is accepted and ignored: probing is configuration in lbpanel.
    return STATE_LETTERS[first]


def _set_states(request, params, *, by_duid):
    state = _state_param(params)
    group = _int_param(params, 1, "group")
    target = _str_param(params, 2, "duid" if by_duid else "address")
    dset = DispatcherSet.objects.filter(setid=group).first() if -(2**31) <= group < 2**31 else None
    if dset is None:
        raise RpcError(FAULT, "State Update Failed", f"there is no set {group}")
    dests = Destination.objects.filter(dset=dset)
    if target != "all":
        dests = dests.filter(duid=target) if by_duid else dests.filter(uri__iexact=target)
    dests = list(dests)
    if not dests:
        what = f"duid {target!r}" if by_duid else target
        raise RpcError(FAULT, "State Update Failed", f"there is no {what} in set {group}")
    with transaction.atomic():
        for dest in dests:
            services.set_state(
                dest,
                state,
                actor=request.user,
                cause=Cause.API,
                reason=f"JSON-RPC dispatcher.set_{'duid_' if by_duid else ''}state",
            )
    pub = publication.status(snapshot())
    if pub.publish_failed:
        # Saved, but the proxies do not have it: a script that reads "Ok" would believe the
        # server is out of rotation while calls still reach it.
        raise RpcError(FAULT, "State Saved But Not Applied", pub.message)
    return "Ok. Dispatcher state updated."


@command("dispatcher.set_state", role=OPERATOR, writes=True)
def set_state(request, params):
    """`dispatcher.set_state <a|i|d> <group> <uri|all>`"""
    return _set_states(request, params, by_duid=False)


@command("dispatcher.set_duid_state", role=OPERATOR, writes=True)
def set_duid_state(request, params):
    """`dispatcher.set_duid_state <a|i|d> <group> <duid|all>`"""
    return _set_states(request, params, by_duid=True)


@command("dispatcher.reload", role=OPERATOR, writes=True)
def reload(request, params):
    """Kamailio rereads its list; the list lives in PostgreSQL here, so every proxy is sent the table again."""
    try:
        version = services.republish()
    except RedisError as exc:
        raise RpcError(FAULT, "Reload Failed", f"Redis: {exc}") from None
    log.warning("dispatcher.reload by %s: table version %s", request.user, version)
    return "Ok. Dispatcher successfully reloaded."


def _ping_state(r):
    return 0 if rules.probing_paused(r.get(contract.PING_ACTIVE_KEY)) else 1


@command("dispatcher.ping_active", role=VIEWER)
def ping_active(request, params):
    """`dispatcher.ping_active [0|1]`: without a parameter, read; with one, pause (0) or resume (1) probing."""
    try:
        r = get_redis()
        old = _ping_state(r)
        if not params:
            return {"OldPingState": old}
        new = _int_param(params, 0, "state")
        if new not in (0, 1):
            raise invalid_params(f"parameter 1 (state) must be 0 or 1, got {new}")
        _require(request, "dispatcher.ping_active with a parameter", ADMIN, writes=True)
        services.set_ping_active(bool(new), actor=request.user, cause=Cause.API, reason="JSON-RPC dispatcher.ping_active")
    except RedisError as exc:
        raise RpcError(FAULT, "Ping State Update Failed", f"Redis: {exc}") from None
    return {"NewPingState": new, "OldPingState": old}


def _optional_str(params, index, name):
    return _str_param(params, index, name) if len(params) > index and params[index] is not None else ""


def _saved(fault):
    """After a change: a publication that failed is a fault, as in _set_states."""
    pub = publication.status(snapshot())
    if pub.publish_failed:
        raise RpcError(FAULT, fault, pub.message)


def _why(exc):
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


@command("dispatcher.add", role=ADMIN, writes=True)
def add(request, params):
    """`dispatcher.add <group> <address> [flags [priority [attrs]]]`. Kamailio adds it in memory until
    the next reload; here it is saved, audited and published, as the panel and the API save a row."""
    if len(params) < 2:
        raise invalid_params("dispatcher.add takes a group and an address, then optionally flags, priority and attrs")
    group = _int_param(params, 0, "group")
    address = _str_param(params, 1, "address")
    flags = _int_param(params, 2, "flags") if len(params) > 2 else 0
    priority = _int_param(params, 3, "priority") if len(params) > 3 else 0
    attrs = _optional_str(params, 4, "attrs")
    if any(c.isspace() for c in address) or any(c in "\r\n" for c in attrs):
        raise RpcError(FAULT, "Adding dispatcher dst failed", "the address has a space or the attrs a line break")
    try:
        services.add_listed_destination(
            f"{group} {address} {flags} {priority} {attrs}".strip(), actor=request.user, reason="JSON-RPC dispatcher.add"
        )
    except (ValueError, ValidationError) as exc:
        raise RpcError(FAULT, "Adding dispatcher dst failed", _why(exc)) from None
    _saved("Destination Saved But Not Applied")
    return "Ok. Dispatcher destination added."


@command("dispatcher.remove", role=ADMIN, writes=True)
def remove(request, params):
    """`dispatcher.remove <group> <address>`: deleted, audited and published (Kamailio: in memory).
    The set stays even when it is left empty (Kamailio drops it; here a set goes by delete_set's rule)."""
    if len(params) < 2:
        raise invalid_params("dispatcher.remove takes a group and an address")
    group, address = _int_param(params, 0, "group"), _str_param(params, 1, "address")
    try:
        services.remove_listed_destination(group, address, actor=request.user, reason="JSON-RPC dispatcher.remove")
    except Destination.DoesNotExist:
        raise RpcError(FAULT, "Removing dispatcher dst failed", f"there is no {address} in set {group}") from None
    _saved("Removal Saved But Not Applied")
    return "Ok. Dispatcher destination removed."


@command("dispatcher.hash")
def hash_(request, params):
    """`dispatcher.hash <nslots> <val1> [val2]`: Kamailio's {hashid, slot} exactly (kamailio_hash).
    lbpanel adds a 4th parameter, a group: then DEST is the URI the proxy sends the key val1 to now
    (rendezvous hashing over the set's usable destinations, as algorithms 0-3 route) and ORDER its failover order."""
    if len(params) < 2:
        raise invalid_params("dispatcher.hash takes nslots and a value, then optionally a second value and a group")
    nslots = _int_param(params, 0, "nslots")
    val1, val2 = _str_param(params, 1, "val1"), _optional_str(params, 2, "val2")
    hashid = ds_get_hash(val1.encode(), val2.encode())
    result = {"hashid": hashid, "slot": hashid % nslots if nslots > 0 else 0}
    if len(params) > 3:
        group = _int_param(params, 3, "group")
        dests = list(Destination.objects.filter(dset__setid=group).order_by("-priority", "id")) if abs(group) < 2**31 else []
        if not dests:
            raise RpcError(404, "Destination Group Not Found", f"there is no set {group} with destinations")
        snap = snapshot()
        usable = [d for d in dests if rules.usable(d, rules.effective_health(snap.health.get(d.id), d.health))]
        order = rendezvous(usable, val1.encode())
        result.update({"DEST": order[0].uri if order else "", "ORDER": [d.uri for d in order]})
    return result


def _runtime_flags(dest, health, probed):
    """The state bits Kamailio's dlist[i].flags holds: the list's, plus I when probes took it down,
    T while suspect, P when probed."""
    flags = dest.flags
    if health.state == contract.DOWN:
        flags |= contract.FLAG_INACTIVE
    if health.state == contract.SUSPECT:
        flags |= contract.FLAG_TRYING
    return flags | contract.FLAG_PROBING if probed else flags & ~contract.FLAG_PROBING


@command("dispatcher.oclist")
def oclist(request, params):
    """`dispatcher.oclist <group>`: Kamailio's overload-control rows. lbpanel has no overload control
    (algorithm 64), so every oc member is Kamailio's value for a destination without oc attributes."""
    group = _int_param(params, 0, "group")
    dests = list(Destination.objects.filter(dset__setid=group).order_by("-priority", "id")) if abs(group) < 2**31 else []
    if not dests:
        raise RpcError(404, "Destination Group Not Found", f"there is no set {group} with destinations")
    probing_mode, snap = ProbeSettings.load().probing_mode, snapshot()
    rows = []
    for dest in dests:
        health = rules.known_health(dest.admin_state, rules.effective_health(snap.health.get(dest.id), dest.health))
        probed = rules.probed(dest.admin_state, dest.probing, probing_mode, dest.health, dest.extra_flags)
        rows.append(
            {
                "group": group,
                "uri": dest.uri,
                "flags": _runtime_flags(dest, health, probed),
                "priority": dest.priority,
                "ocrate": 0,
                "ocidx": 0,
                "ocseq": 0,
                "octime_sec": 0,
                "octime_usec": 0,
                "ocmin": 0,
                "ocmax": 100,
            }
        )
    return rows


# --- transport -----------------------------------------------------------------------------------


def _require(request, what, role, *, writes):
    if writes and is_read_only_token(request):
        raise RpcError(403, "Forbidden", f"{what}: this token is read-only", http_status=status.HTTP_403_FORBIDDEN)
    if not has_role(request.user, role):
        raise RpcError(403, "Forbidden", f"{what} needs the {role} role", http_status=status.HTTP_403_FORBIDDEN)


def _parse(body):
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RpcError(PARSE_ERROR, "Parse Error", "the body is not JSON") from None
    except RecursionError:
        # json.loads gives up past Python's recursion limit; no dispatcher.* call nests more than twice.
        raise RpcError(
            PARSE_ERROR, "Parse Error", "the body nests arrays or objects too deeply", http_status=status.HTTP_400_BAD_REQUEST
        ) from None
    if isinstance(doc, list):
        raise RpcError(INVALID_REQUEST, "Invalid Request", "batch requests are not supported; send one call per request")
    if not isinstance(doc, dict):
        raise RpcError(INVALID_REQUEST, "Invalid Request", "the body must be a JSON object")
    request_id = doc.get("id")
    if doc.get("jsonrpc", "2.0") != "2.0":
        raise RpcError(INVALID_REQUEST, "Invalid Request", 'jsonrpc must be "2.0"')
    if not isinstance(doc.get("method"), str):
        raise RpcError(INVALID_REQUEST, "Invalid Request", "method must be a string")
    params = doc.get("params", [])
    if isinstance(params, dict):
        params = list(params.values())  # jsonrpcs takes a struct's members in order
    if not isinstance(params, list):
        raise RpcError(INVALID_REQUEST, "Invalid Request", "params must be an array")
    return doc["method"], params, request_id


class JsonRpcView(APIView):
    authentication_classes = AUTHENTICATION
    renderer_classes = [JSONRenderer]
    parser_classes = []  # the body is read raw: a parse error is a JSON-RPC error, not DRF's 400

    @extend_schema(exclude=True)
    def post(self, request):
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        request_id = None
        try:
            method, params, request_id = _parse(request.body)
            entry = METHODS.get(method)
            if entry is None:
                raise RpcError(METHOD_NOT_FOUND, "Method Not Found", f"{method!r}; lbpanel has {', '.join(sorted(METHODS))}")
            func, role, writes = entry
            _require(request, method, role, writes=writes)
            result = func(request, params)
        except RpcError as exc:
            return Response(exc.body(request_id), status=exc.http_status)
        return Response({"jsonrpc": "2.0", "result": result, "id": request_id})

    def handle_exception(self, exc):
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            response = Response(RpcError(401, "Unauthorized", str(exc.detail)).body(None), status=status.HTTP_401_UNAUTHORIZED)
            response["WWW-Authenticate"] = 'Token realm="api"'
            return response
        if isinstance(exc, exceptions.PermissionDenied):  # e.g. a session POST without its CSRF token
            return Response(RpcError(403, "Forbidden", str(exc.detail)).body(None), status=status.HTTP_403_FORBIDDEN)
        return super().handle_exception(exc)
