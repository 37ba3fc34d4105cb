"""Call records: the story of each dispatched INVITE, in one Redis stream for the cluster.

Every proxy appends to `lb:calllog` (XADD, trimmed by `MAXLEN ~ call_log_max` and
`MINID ~ now - call_log_retention_s`). An entry has two fields: `t`, its kind, and `d`, its values
joined by the ASCII unit separator (0x1f) in the order of SETUP_FIELDS or END_FIELDS. Joining
costs the proxy a fraction of what JSON does, and it is safe: every value from the wire goes
through `clean` (no control characters), and destination URIs are checked when saved.

- "setup", written when the INVITE transaction got its final response: call_id, started (epoch
  seconds), node, source ("ip:port"), carrier, set, why ("rule <network>" / "default"),
  from_user, to_user, ftag (the INVITE's From tag), final_code, setup_ms, canceled ("1" when the
  caller cancelled), attempts (records separated by 0x1e, each `attempt`'s values by 0x1d).
- "end", written when a BYE passed or the dialog expired: call_id, ended (epoch seconds), btag
  (the BYE's From tag), by ("expired" when the dialog expired, else empty).

The reader merges an end into the newest setup of its Call-ID: who hung up is the caller when
the BYE carries the INVITE's From tag, else the callee. Stream ids are millisecond timestamps of
when an entry was written, so a time range maps onto XRANGE bounds.
"""

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


US, RS, GS = "\x1f", "\x1e", "\x1d"
SETUP_FIELDS = (
    "call_id",
    "started",
    "node",
    "source",
    "carrier",
    "set",
    "why",
    "from_user",
    "to_user",
    "ftag",
    "final_code",
    "setup_ms",
    "canceled",
    "attempts",
)
END_FIELDS = ("call_id", "ended", "btag", "by")
ATTEMPT_FIELDS = ("destination_id", "server_id", "code", "ms", "reason", "uri")

# KEYS[1] the stream; ARGV: max entries, MINID to trim to (0: not now), then kind, data pairs.
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


def attempt(destination_id, server_id, code, ms, reason, uri):
    """One server tried: code None = no final reply (timeout, unreachable, cancelled: `reason`)."""
    return f"{destination_id}{GS}{'' if server_id is None else server_id}{GS}{'' if code is None else code}{GS}{ms}{GS}{reason}{GS}{uri}"


def encode_setup(*values):
    """SETUP_FIELDS' values, in order (attempts: `attempt` strings joined by RS)."""
    return US.join(map(str, values))


def encode_end(*values):
    return US.join(map(str, values))


def decode_attempts(raw):
    out = []
    for item in raw.split(RS) if raw else ():
        did, sid, code, ms, reason, uri = item.split(GS, 5)
        out.append(
            {"destination_id": int(did), "server_id": _int(sid), "code": _int(code), "ms": int(ms), "reason": reason, "uri": uri}
        )
    return out


def decode_entry(fields):
    """A stream entry as a dict of its named values, `t` its kind; {} when it cannot be read."""
    kind = _s(fields.get(b"t", fields.get("t")))
    raw = _s(fields.get(b"d", fields.get("d")))
    names = SETUP_FIELDS if kind == SETUP else END_FIELDS if kind == END else None
    if names is None or raw is None:
        return {}
    values = raw.split(US)
    if len(values) != len(names):
        return {}
    doc = dict(zip(names, values, strict=True))
    doc["t"] = kind
    try:
        if kind == SETUP:
            doc["started"] = float(doc["started"])
            doc["set"] = _int(doc["set"])
            doc["final_code"] = _int(doc["final_code"])
            doc["setup_ms"] = _int(doc["setup_ms"])
            doc["canceled"] = doc["canceled"] == "1"
            doc["attempts"] = decode_attempts(doc["attempts"])
        else:
            doc["ended"] = float(doc["ended"])
    except ValueError:
        return {}
    return doc


def _int(value):
    return int(value) if value not in ("", "None") else None


def _s(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def stream_id_ms(entry_id):
    """The millisecond timestamp of a stream id ("1700000000000-3")."""
    return int(_s(entry_id).split("-", 1)[0])
