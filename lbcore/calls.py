"""Call records: the story of each dispatched INVITE, in one Redis stream for the cluster.

Every proxy appends to `lb:calllog` (XADD, trimmed by `MAXLEN ~ call_log_max` and
`MINID ~ now - call_log_retention_s`). Two kinds of entry, both flat string fields:

- "setup", written when the INVITE transaction got its final response: call_id, started (epoch
  seconds), node, source ("ip:port"), carrier, set, why ("rule <network>" / "default"),
  from_user, to_user, ftag (the INVITE's From tag), attempts (JSON, see `attempt`),
  final_code, setup_ms, canceled ("1" when the caller cancelled).
- "end", written when a BYE passed or the dialog expired: call_id, ended (epoch seconds),
  btag (the BYE's From tag; empty when the dialog expired).

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
    return value[:limit].translate(_CONTROL)


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


def encode_attempts(attempts):
    return json.dumps(attempts, separators=(",", ":"))


def decode_attempts(raw):
    out = []
    for item in json.loads(raw or "[]"):
        did, server_id, uri, code, ms, reason = item
        out.append({"destination_id": did, "server_id": server_id, "uri": uri, "code": code, "ms": ms, "reason": reason})
    return out


def decode_entry(fields):
    """A stream entry's fields (bytes or str keys/values) as a str dict."""
    return {_s(k): _s(v) for k, v in fields.items()}


def _s(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def stream_id_ms(entry_id):
    """The millisecond timestamp of a stream id ("1700000000000-3")."""
    return int(_s(entry_id).split("-", 1)[0])
