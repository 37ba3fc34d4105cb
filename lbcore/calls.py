"""Call records: the story of each dispatched INVITE, in one Redis stream for the cluster.

Every proxy appends to `lb:calllog` (XADD, trimmed by `MAXLEN ~ call_log_max` and
`MINID ~ now - call_log_retention_s`). An entry has two fields: `t` (its kind) and `d`, a JSON
object (one field, not one per item: the proxy's cost per record is one json.dumps). Two kinds:

- "setup", written when the INVITE transaction got its final response: call_id, started (epoch
  seconds), node, source ("ip:port"), carrier, set, why ("rule <network>" / "default"),
  from_user, to_user, ftag (the INVITE's From tag), attempts (a list, see `attempt`),
  final_code, setup_ms, canceled (true when the caller cancelled).
- "end", written when a BYE passed or the dialog expired: call_id, ended (epoch seconds),
  btag (the BYE's From tag), by ("expired" when the dialog expired, else empty).

The reader merges an end into the newest setup of its Call-ID: who hung up is the caller when
the BYE carries the INVITE's From tag, else the callee. Stream ids are millisecond timestamps of
when an entry was written, so a time range maps onto XRANGE bounds.

What came from the wire (Call-ID, users, tags, carrier) is cut to a length and stripped of
control characters here, once, so no reader needs to care.
"""

import json

CALL_LOG_KEY = "lb:calllog"
SETUP, END = "setup", "end"
CALLER, CALLEE, EXPIRED = "caller", "callee", "expired"

CALL_ID_MAX = 200
USER_MAX = 64
TAG_MAX = 64
TEXT_MAX = 120

DEFAULT_RETENTION_S = 3600
DEFAULT_MAX = 1_000_000

_CONTROL = dict.fromkeys(range(32), "?") | {127: "?"}


def clean(value, limit):
    """Wire text as a bounded, printable str (bytes are read as UTF-8, bad bytes replaced)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", "replace")
    value = value[:limit]
    return value if value.isprintable() else value.translate(_CONTROL)


def user_part(uri):
    """The user of a SIP/tel URI (bytes): b"sip:1000@host;x" -> "1000"; "" when it has none."""
    if not uri:
        return ""
    colon = uri.find(b":")
    rest = uri[colon + 1 :] if colon >= 0 else uri
    at = rest.find(b"@")
    if at < 0:
        if uri[:4].lower() != b"tel:":
            return ""
        at = len(rest)
    user = rest[:at].split(b";", 1)[0]
    return clean(user, USER_MAX)


def retention(settings):
    """(retention seconds, max entries) from a table's settings; max 0 means recording is off.
    Not lbcore.contract.setting(): there a 0 reads as the default, here it means off."""
    ret = settings.get("call_log_retention_s")
    cap = settings.get("call_log_max")
    return (int(ret) if ret else DEFAULT_RETENTION_S), (int(cap) if cap is not None else DEFAULT_MAX)


def attempt(destination_id, server_id, uri, code, ms, reason):
    """One server tried, as stored: code None = no final reply (timeout, unreachable, cancelled)."""
    return [destination_id, server_id, uri, code, ms, reason]


# KEYS[1] the stream; ARGV: max entries, MINID to trim to (0: not now), then kind, JSON pairs.
# One script call per flush: the proxy packs one command, not one per record.
FLUSH_LUA = """
for i = 3, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't', ARGV[i], 'd', ARGV[i + 1])
end
if ARGV[2] ~= '0' then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
end
return (#ARGV - 2) / 2
"""

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def encode(doc):
    return _dumps(doc)


def decode_attempts(items):
    out = []
    for item in items or ():
        did, server_id, uri, code, ms, reason = item
        out.append({"destination_id": did, "server_id": server_id, "uri": uri, "code": code, "ms": ms, "reason": reason})
    return out


def decode_entry(fields):
    """A stream entry's fields as one dict: its JSON, and `t` its kind ({} when unreadable)."""
    kind = fields.get(b"t", fields.get("t"))
    raw = fields.get(b"d", fields.get("d"))
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    doc["t"] = _s(kind)
    return doc


def _s(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def stream_id_ms(entry_id):
    """The millisecond timestamp of a stream id ("1700000000000-3")."""
    return int(_s(entry_id).split("-", 1)[0])
