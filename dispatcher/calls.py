"""Finding calls in the call log stream (lbcore.calls), for the Calls page and /api/v1/calls/.

The stream is scanned newest first in pages (XREVRANGE), filtered here, and stops at `limit`
matches or after SCAN_MAX entries. A search that stopped before the start of its range says so
(`truncated`, `searched_until`): a call not listed may still be older than that. Ends (BYE,
expiry) are newer than their setups, so by the time a setup is read its end has been seen.

Filters: `call_id` exact; `number` a substring of the From or To user part (so "5551234" finds
"+15551234"); `server` a server's id or name (calls that tried it, on any attempt); `carrier`
exact (case-insensitive); `final_code` exact ("503") or a class ("5xx"); `since` / `until` the
time the call's setup was recorded (its final response).
"""

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lbcore import calls

SCAN_MAX = 200_000
PAGE = 1_000
LIMIT_MAX = 500
CODE_RE = re.compile(r"^[1-6](\d\d|xx)$")


class FilterError(ValueError):
    """A filter that cannot be applied, with the field it came from."""

    def __init__(self, field_name, message):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass
class Filters:
    call_id: str = ""
    number: str = ""
    server_ids: frozenset | None = None  # of the `server` filter: its id, and its destinations' ids
    destination_ids: frozenset | None = None
    carrier: str = ""
    final_code: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def match(self, f):
        if self.call_id and f.get("call_id") != self.call_id:
            return False
        if self.carrier and (f.get("carrier") or "").lower() != self.carrier.lower():
            return False
        if self.final_code:
            code = str(f.get("final_code"))
            if self.final_code.endswith("xx"):
                if code[:1] != self.final_code[0]:
                    return False
            elif code != self.final_code:
                return False
        if self.number and self.number not in (f.get("from_user") or "") and self.number not in (f.get("to_user") or ""):
            return False
        if self.server_ids is not None:
            tried = f.get("attempts") or ()
            if not any(a["server_id"] in self.server_ids or a["destination_id"] in self.destination_ids for a in tried):
                return False
        return True


@dataclass
class SearchResult:
    calls: list = field(default_factory=list)
    scanned: int = 0
    truncated: bool = False  # stopped at SCAN_MAX before the start of the range
    searched_until: datetime | None = None  # when truncated: the oldest time looked at
    more: bool = False  # stopped at `limit` matches: older ones may match too
    oldest_record: datetime | None = None  # the oldest record the stream still holds


def server_filter(value):
    """(server ids, destination ids) for a server id or name; FilterError when there is none."""
    from dispatcher.models import Destination, Server  # noqa: PLC0415 (keeps the module importable for the scan)

    value = value.strip()
    # Every server the value names, by id and by name (names are unique whatever the case, but a
    # name may be another server's id): more than one is refused, never one of them picked.
    found = list(Server.objects.filter(name__iexact=value)[:2])
    if value.isascii() and value.isdigit():
        found += [s for s in Server.objects.filter(pk=int(value)) if s not in found]
    if not found:
        raise FilterError("server", f"No server has the id or name {value!r}.")
    if len(found) > 1:
        which = "; ".join(f"id {s.pk}, {s.name!r} ({s.transport} {s.hostport})" for s in sorted(found, key=lambda s: s.pk))
        raise FilterError("server", f"{value!r} is more than one server ({which}): search by the name or id of the one you mean.")
    server = found[0]
    dest_ids = frozenset(Destination.objects.filter(server=server).values_list("id", flat=True))
    return frozenset({server.pk}), dest_ids


def check_code(value):
    value = value.strip().lower()
    if value and not CODE_RE.match(value):
        raise FilterError("final_code", "A SIP code (503) or a class of them (5xx).")
    return value


def _ms(dt):
    return int(dt.timestamp() * 1000)


def _when(ms):
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def search(client, filters, limit=50, scan_max=None, page=None, dialog_timeout=None):
    """Scan the stream newest first; returns SearchResult with merged call dicts (see `merge`).
    `dialog_timeout`: seconds after which an answered call without an end is "unknown", not "up"."""
    scan_max, page = scan_max or SCAN_MAX, page or PAGE
    now = time.time()
    result = SearchResult()
    low = str(_ms(filters.since)) if filters.since else "-"
    until_ms = _ms(filters.until) if filters.until else None
    high = "+"
    ends = {}  # call_id -> end fields, newer than where the scan is
    oldest_ms = None
    # a Call-ID lookup reads only the entries that start with it (both kinds do), undecoded
    prefix = (filters.call_id + calls.US).encode() if filters.call_id else None
    while True:
        entries = client.xrevrange(calls.CALL_LOG_KEY, max=high, min=low, count=page)
        if not entries:
            break
        for entry_id, raw in entries:
            result.scanned += 1
            if prefix is not None and not raw.get(b"d", b"").startswith(prefix):
                continue
            f = calls.decode_entry(raw)
            if not f:
                continue  # not a record this version reads
            call_id = f.get("call_id", "")
            if f.get("t") == calls.END:
                ends.setdefault(call_id, f)
                continue
            oldest_ms = calls.stream_id_ms(entry_id)
            # an answered setup takes its end, so an older call with the same Call-ID does not
            end = ends.pop(call_id, None) if _answered(f.get("final_code")) else None
            if until_ms is not None and oldest_ms > until_ms:
                continue
            if not filters.match(f):
                continue
            result.calls.append(merge(f, end, now, dialog_timeout))
            if len(result.calls) >= limit or filters.call_id:
                result.more = len(result.calls) >= limit and not filters.call_id
                return _finish(client, result)
        last = entries[-1][0]
        high = "(" + (last.decode() if isinstance(last, bytes) else last)
        if len(entries) < page:
            break
        if result.scanned >= scan_max:
            result.truncated = True
            result.searched_until = _when(calls.stream_id_ms(last))
            break
    return _finish(client, result)


def _finish(client, result):
    first = client.xrange(calls.CALL_LOG_KEY, min="-", max="+", count=1)
    if first:
        result.oldest_record = _when(calls.stream_id_ms(first[0][0]))
    return result


def find_call(client, call_id, dialog_timeout=None):
    """The newest call with this Call-ID, or None; and whether the whole stream was looked at."""
    result = search(client, Filters(call_id=call_id), limit=1, dialog_timeout=dialog_timeout)
    return (result.calls[0] if result.calls else None), result


def merge(setup, end, now=None, dialog_timeout=None):
    """One call as the panel and the API show it (server names are added by `name_servers`).
    An answered call without an end is "up", or "unknown" once dialog_timeout has passed since
    its answer: then its end record was lost (or its proxy died before writing it)."""
    started = _float(setup.get("started"))
    setup_ms = _int(setup.get("setup_ms"))
    code = _int(setup.get("final_code"))
    answered = _answered(code)
    call = {
        "call_id": setup.get("call_id", ""),
        "started": datetime.fromtimestamp(started, tz=UTC),
        "node": setup.get("node", ""),
        "source": setup.get("source", ""),
        "carrier": setup.get("carrier", ""),
        "set": _int(setup.get("set")),
        "why": setup.get("why", ""),
        "from_user": setup.get("from_user", ""),
        "to_user": setup.get("to_user", ""),
        "final_code": code,
        "canceled": setup.get("canceled") is True,
        "setup_ms": setup_ms,
        "answered": answered,
        "state": "failed",
        "duration_s": None,
        "ended": None,
        "ended_by": None,
        "attempts": [dict(a) for a in setup.get("attempts") or ()],
    }
    if answered:
        call["state"] = "up"
        if end is not None:
            ended = _float(end.get("ended"))
            call["state"] = "ended"
            call["ended"] = datetime.fromtimestamp(ended, tz=UTC)
            call["duration_s"] = round(max(0.0, ended - started - (setup_ms or 0) / 1000), 1)
            by = end.get("by")
            if not by:
                by = calls.CALLER if end.get("btag") == setup.get("ftag") else calls.CALLEE
            call["ended_by"] = by
        elif dialog_timeout and now and now - started - (setup_ms or 0) / 1000 > dialog_timeout + 60:
            call["state"] = "unknown"
    return call


def code_colour(code, canceled=False):
    """The badge colour of a final code: answered green, cancelled grey, 4xx orange, else red."""
    if code is None:
        return "red"
    if 200 <= code < 300:
        return "green"
    if canceled or code == 487:
        return "grey"
    return "orange" if 400 <= code < 500 else "red"


def name_servers(found):
    """Give every attempt its server's name now (`server`), a deleted one reads as its URI; and
    every code its badge colour (`colour`), so no template decides colours."""
    from dispatcher.models import Destination, Server  # noqa: PLC0415

    server_ids = {a["server_id"] for c in found for a in c["attempts"] if a["server_id"] is not None}
    dest_ids = {a["destination_id"] for c in found for a in c["attempts"]}
    by_dest = dict(Destination.objects.filter(pk__in=dest_ids).values_list("pk", "server_id"))
    names = dict(Server.objects.filter(pk__in=server_ids | set(by_dest.values())).values_list("pk", "name"))
    for c in found:
        c["colour"] = code_colour(c["final_code"], c["canceled"])
        for a in c["attempts"]:
            a["colour"] = code_colour(a["code"])
            sid = a["server_id"] if a["server_id"] in names else by_dest.get(a["destination_id"])
            a["server_id"] = sid if sid in names else a["server_id"]
            a["server"] = names.get(sid) or a["uri"]
    return found


def dialog_timeout():
    """The dialog_timeout_s proxies apply: past it, a call with no BYE has been expired."""
    from dispatcher.models import ProxySettings  # noqa: PLC0415

    return ProxySettings.load().dialog_timeout_s


def dropped_records(snap):
    """Call records the live proxies lost (Redis away too long), from their heartbeats."""
    return sum(int((n.get("totals") or {}).get("call_records_dropped") or 0) for n in snap.nodes)


def _answered(code):
    return isinstance(code, int) and 200 <= code < 300


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
