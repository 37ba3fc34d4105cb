"""The Redis contract between the panel, the prober and every proxy.

This module owns the key names and the JSON shapes. The web side encodes with
`encode_table` / `encode_health`; the proxy decodes with `decode_table` /
`decode_health` / `decode_event`. No Django here: the panel, the prober and the proxy import it.

Keys:
  lb:table          JSON routing table, written whole on every committed change
  lb:table:version  INCR counter that numbers the tables
  lb:health         hash: destination id -> health JSON
  lb:rtt:<id>       list: last RTT_SAMPLES probe results, newest first (LPUSH+LTRIM),
                    each JSON {"t": epoch, "rtt_ms": float|null, "code": int|null}
  lb:probe:last_round  epoch seconds of the last finished probe round (for /healthz)
  lb:calls:<id>     list: active calls sampled every CALLS_SAMPLE_SECONDS, newest first, capped at
                    CALLS_SAMPLES; each JSON {"t": epoch, "active": int} (written by the beat tick)
  lb:probe:active   "0" while probing is paused (JSON-RPC dispatcher.ping_active 0); absent or "1" = probing
  lb:events         pub/sub channel: table events (the version) and health events (the destination id)
  lb:node:<name>    JSON heartbeat and counters of one proxy, with a TTL
  lb:nodecarriers:<name>  JSON the carrier figures of its heartbeat, kept a day past it
  lb:dialogs:<name>, lb:dialogcounts:<name>  the calls up, one record per call, and their count
                    per destination (see "dialogs" below): what every reader counts calls from
  lb:nodecalls:<name>  JSON calls up on one proxy, per destination, written by proxies from before
                    dialog records (lbcore.rules.unvouched_calls still reads it during an upgrade)
  lb:vrrp:<name>    JSON {"name", "state", "at"}: what keepalived last said of one node's floating
                    address (`manage.py proxy_check --report STATE` from its notify hook)
  lb:dnsfail:<node> hash, destination id -> JSON: the host names failing on that proxy (see "DNS" below)
"""

import json
import logging
import math
import time
from dataclasses import dataclass, field

from sip.headers import server_val_error

log = logging.getLogger(__name__)

TABLE_KEY = "lb:table"
TABLE_VERSION_KEY = "lb:table:version"
HEALTH_KEY = "lb:health"
EVENTS_CHANNEL = "lb:events"
NODE_KEY_PREFIX = "lb:node:"
NODE_TTL_SECONDS = 5
RTT_KEY_PREFIX = "lb:rtt:"
RTT_SAMPLES = 60
LAST_ROUND_KEY = "lb:probe:last_round"
CALLS_KEY_PREFIX = "lb:calls:"
CALLS_SAMPLE_SECONDS = 10
CALLS_SAMPLES = 360  # one hour
CALLS_SAMPLE_CLAIM_KEY = "lb:calls:claim"
PING_ACTIVE_KEY = "lb:probe:active"

# Health states. "suspect" is set by a proxy that saw a 5xx or a timeout on an
# INVITE: no new calls until a probe answers (or suspect_hold_ms passes).
UP, DOWN, UNKNOWN, SUSPECT = "up", "down", "unknown", "suspect"
HEALTH_STATES = (UP, DOWN, UNKNOWN, SUSPECT)

ACTIVE, INACTIVE, DISABLED = "active", "inactive", "disabled"

# Kamailio dispatcher flag bits, as in dispatcher.list and kamcmd output (dispatch.h: DS_*_DST).
FLAG_INACTIVE, FLAG_TRYING, FLAG_DISABLED, FLAG_PROBING, FLAG_NODNSARES, FLAG_NOPING = 1, 2, 4, 8, 16, 32

# Kamailio's ds_probing_mode (dispatch.h DS_PROBE_*): destinations with the P flag (0), every one (1),
# those with P that are inactive (2), those with P, continually (3). lbcore.rules.probed says how we apply them.
PROBE_FLAGGED, PROBE_ALL, PROBE_INACTIVE, PROBE_ONLYFLAGGED = 0, 1, 2, 3

# Algorithm 10's load (SetSpec.load_mode): active calls per unit of weight, as the seed describes it,
# or Kamailio's plain least calls.
LOAD_WEIGHTED, LOAD_CALLS = "weighted", "calls"

DEFAULT_SETTINGS = {
    "default_set": None,
    "fr_timer_ms": 5000,
    "fr_inv_timer_ms": 30000,
    "trying_timeout_ms": 500,
    "suspect_hold_ms": 30000,
    "trusted_networks": ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    "server_header": "lbpanel",
    "max_pending_invites": 5000,
    "dialog_timeout_s": 10800,  # a call with no BYE stops counting as active after this
    "overload_lag_ms": 200,  # requests waiting this long before we read them: shed new INVITEs
    "retry_after_s": 5,  # Retry-After on the 503s the proxy sends itself
    "tcp_idle_timeout_s": 300,  # a TCP connection with no bytes either way is closed after this
    "tcp_message_timeout_ms": 10000,  # a message begun on TCP must end within this (slowloris)
    "tcp_max_connections": 4096,  # inbound TCP in total (and at most 3/4 of the open file limit)
    "tcp_max_per_ip": 64,  # inbound TCP from one untrusted address
    "max_transactions": 300000,  # live server transactions, lingering ones included: 503 past it
    "max_transactions_per_source": 1000,  # the same, from one untrusted address
    "hep_destination": "",  # HOST:PORT: SIP capture as HEPv3 over UDP (lbcore/hep.py); "" = off
    "hep_capture_id": 2001,  # HEP capture agent id
    "call_log_retention_s": 3600,  # call records (lbcore.calls) older than this are trimmed
    "call_log_max": 1000000,  # and past this many; 0 turns call records off
}


def setting(settings, name):
    """A table's setting as the proxy applies it: a missing, null or zero one is the default."""
    return settings.get(name) or DEFAULT_SETTINGS[name]


def node_key(name):
    return NODE_KEY_PREFIX + name


def calls_key(destination_id):
    return f"{CALLS_KEY_PREFIX}{destination_id}"


def rtt_key(destination_id):
    return f"{RTT_KEY_PREFIX}{destination_id}"


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    id: int
    setid: int
    uri: str
    host: str
    port: int
    transport: str
    priority: int = 0
    weight: int = 0
    rweight: int = 0
    duid: str = ""
    maxload: int = 0
    attrs: str = ""
    admin_state: str = ACTIVE
    probing: bool = True
    # The server (one box, any number of sets) this row is on; None in a table from before servers.
    server_id: int | None = None

    @property
    def address(self):
        return (self.host, self.port)


@dataclass(frozen=True, slots=True)
class SetSpec:
    setid: int
    name: str
    algorithm: int
    failover_codes: tuple
    destinations: tuple
    load_mode: str = LOAD_WEIGHTED


@dataclass(frozen=True, slots=True)
class SourceRuleSpec:
    network: str
    setid: int
    carrier: str = ""  # the rule is a carrier: its description, else its network (carrier_name)


@dataclass(frozen=True, slots=True)
class Table:
    version: int
    sets: dict  # setid -> SetSpec
    source_rules: tuple
    settings: dict
    published_at: float = 0.0

    @property
    def server_header(self):
        """Server / User-Agent bytes for the proxy's own messages. The panel refuses a bad value;
        one published before it did (or written into Redis by hand) falls back to lbpanel."""
        text = self.settings.get("server_header") or DEFAULT_SETTINGS["server_header"]
        why = server_val_error(text) if isinstance(text, str) else "is not text"
        if why is not None:
            log.error("table %s: server_header %r %s; sending Server: lbpanel instead", self.version, text, why)
            return DEFAULT_SETTINGS["server_header"].encode()
        return text.encode()

    def destination(self, destination_id):
        for dset in self.sets.values():
            for dest in dset.destinations:
                if dest.id == destination_id:
                    return dest
        return None


@dataclass(frozen=True, slots=True)
class Health:
    state: str = UNKNOWN
    rtt_ms: float | None = None
    since: float = field(default_factory=time.time)
    fails: int = 0
    code: int | None = None
    reason: str = ""


# Calls from an address no source rule matches are one carrier row: "other".
OTHER_CARRIER = "other"


def carrier_name(network, description=""):
    """A source rule is a carrier: named by its description (rules sharing one are one carrier),
    else by its network."""
    return " ".join((description or "").split()) or network


EMPTY_TABLE = Table(version=0, sets={}, source_rules=(), settings=dict(DEFAULT_SETTINGS))


def encode_table(version, sets, source_rules, settings, published_at=None):
    """`sets`: list of dicts shaped like SetSpec with destinations as dicts shaped like DestinationSpec."""
    doc = {
        "version": version,
        "published_at": published_at if published_at is not None else time.time(),
        "sets": {str(s["setid"]): s for s in sets},
        "source_rules": list(source_rules),
        "settings": {**DEFAULT_SETTINGS, **settings},
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def decode_table(raw):
    doc = json.loads(raw)
    sets = {}
    for key, s in doc.get("sets", {}).items():
        dests = tuple(
            DestinationSpec(**{k: v for k, v in d.items() if k in DestinationSpec.__slots__}) for d in s.get("destinations", ())
        )
        sets[int(key)] = SetSpec(
            setid=int(s["setid"]),
            name=s.get("name", ""),
            algorithm=int(s.get("algorithm", 4)),
            failover_codes=tuple(s.get("failover_codes", (500, 503))),
            destinations=dests,
            load_mode=s.get("load_mode") or LOAD_WEIGHTED,
        )
    rules = tuple(
        SourceRuleSpec(network=r["network"], setid=int(r["setid"]), carrier=r.get("carrier") or r["network"])
        for r in doc.get("source_rules", ())
    )
    return Table(
        version=int(doc["version"]),
        sets=sets,
        source_rules=rules,
        settings={**DEFAULT_SETTINGS, **doc.get("settings", {})},
        published_at=float(doc.get("published_at", 0.0)),
    )


def encode_health(health):
    return json.dumps(
        {
            "state": health.state,
            "rtt_ms": health.rtt_ms,
            "since": health.since,
            "fails": health.fails,
            "code": health.code,
            "reason": health.reason,
        },
        separators=(",", ":"),
    )


def decode_health(raw):
    doc = json.loads(raw)
    state = doc.get("state", UNKNOWN)
    if state not in HEALTH_STATES:
        state = UNKNOWN
    return Health(
        state=state,
        rtt_ms=doc.get("rtt_ms"),
        since=float(doc.get("since") or 0.0),
        fails=int(doc.get("fails") or 0),
        code=doc.get("code"),
        reason=doc.get("reason") or "",
    )


def table_event(version):
    return json.dumps({"type": "table", "version": version})


def health_event(destination_id):
    """Names the destination only: Redis pub/sub ignores the database number, so an event may come
    from another deployment on the same server, and a reader takes the health from lb:health."""
    return json.dumps({"type": "health", "id": destination_id})


def decode_event(raw):
    """Return ("table", version), ("health", id) or None for anything else."""
    try:
        doc = json.loads(raw)
        if doc.get("type") == "table":
            return ("table", int(doc["version"]))
        if doc.get("type") == "health":
            return ("health", int(doc["id"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


NODE_COUNTERS = (
    "invites",
    "answered",
    "failovers",
    "sent_503",
    "shed",
    "refused",  # requests answered statelessly and forgotten: untrusted, over a cap, looped
    "adopted",  # calls taken over from another node's (or our previous process's) dialog records
    "call_records_dropped",  # call records lost: Redis unreachable long enough to fill the queue
    "inbox_dropped",  # --processes: datagrams for this worker dropped, it not reading (reader: inbox full; bpf: socket full)
    # inbound TCP connections refused at a cap, and connections we closed, by why
    "tcp_refused_cap",
    "tcp_refused_per_ip",
    "tcp_closed_idle",
    "tcp_closed_incomplete",
    "tcp_closed_unframeable",
    "tcp_closed_write_stalled",
    "tcp_closed_handshake_timeout",  # TLS: handshake not done within the handshake timeout
    "tcp_closed_handshake_failed",  # TLS: the handshake failed (not TLS, no common cipher, bad certificate)
)
DEST_COUNTERS = ("active", "invites", "answered", "failovers", "cps", "cps_1m")


def encode_node(
    name,
    *,
    table_version,
    started,
    pid,
    listen,
    totals,
    destinations,
    heartbeat=None,
    unknown=None,
    restarted_at=None,
    table_published_at=None,
    table_applied_at=None,
    advertise=None,
    holds_address=None,
    carriers=None,
    steering=None,
    load=None,
):
    """One proxy's heartbeat. `totals`: NODE_COUNTERS (+ "active"); `destinations`: id -> DEST_COUNTERS.

    `table_published_at` / `table_applied_at`: the published_at stamp of the table this node
    routes from and when this node applied it (epoch seconds, milliseconds kept): their
    difference is how long the table took to reach it. `advertise`: "host:port" named in Via and
    Record-Route (None: the sockets' own); `holds_address`: whether that floating address is
    on this node now, None when it cannot tell.

    `cps` is new INVITEs dispatched per second over the last 10 s (0.1 resolution: it reads 0
    within 10 s of the last call), `cps_1m` the same over the last minute; a proxy from before
    `cps_1m` sent only the minute's figure, as `cps`. `unknown`: id -> calls this node's
    previous process left up that have not been seen to end (since `restarted_at`).
    `carriers`: carrier name -> its figures since `started` (shape: lbcore.carriers).
    `steering`: for a worker of `--processes`, how its calls reach it: {"mode": "bpf" | "reader",
    "why": why the reader, when BPF was asked for by "auto" and the kernel refused it, else None}.
    `load`: {"cpu": share of one core this process used, "delay_ms": its worst loop lag or queue
    delay, "window_s": over how long}, None until it has a second to go on (proxy.load; read
    with `node_load`); a worker behind --steering reader adds "reader_cpu", the reader process's
    share (None when it could not be read).
    """
    return json.dumps(
        {
            "name": name,
            "heartbeat": heartbeat if heartbeat is not None else time.time(),
            "started": started,
            "pid": pid,
            "listen": list(listen),
            "table_version": table_version,
            "totals": totals,
            "destinations": {str(k): v for k, v in destinations.items()},
            "unknown": {str(k): n for k, n in (unknown or {}).items()},
            "restarted_at": restarted_at,
            "table_published_at": table_published_at,
            "table_applied_at": table_applied_at,
            "advertise": advertise,
            "holds_address": holds_address,
            "carriers": carriers or {},
            "steering": steering,
            "load": load,
        },
        separators=(",", ":"),
    )


def node_load(doc):
    """A heartbeat's load figures as numbers ({"cpu", "delay_ms", "window_s"}), or None when it has
    none: a proxy from before them, one started less than a second ago, or junk. A worker behind a
    reader adds "reader_cpu": a number, or None when it did not know it (or sent junk)."""
    raw = doc.get("load")
    if not isinstance(raw, dict):
        return None
    try:
        out = {k: float(raw[k]) for k in ("cpu", "delay_ms", "window_s")}
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) and v >= 0 for v in out.values()):
        return None
    if "reader_cpu" in raw:
        out["reader_cpu"] = _share(raw["reader_cpu"])
    return out


def _share(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def decode_node(raw):
    doc = json.loads(raw)
    doc["destinations"] = {int(k): v for k, v in doc.get("destinations", {}).items()}
    doc["unknown"] = {int(k): int(n) for k, n in (doc.get("unknown") or {}).items()}
    return doc


# -- a node's carrier figures, kept past its heartbeat ---------------------------------------
# lb:nodecarriers:<name>  JSON {"name", "started", "written", "carriers", "previous"}: the heartbeat's
# carrier figures again, kept a day, so the panel still counts (and names) a node that stopped
# reporting; "previous": {"started", "written"} of the process this one replaced under the same
# name (its counts are gone: the panel says so), or null

NODE_CARRIERS_KEY_PREFIX = "lb:nodecarriers:"
NODE_CARRIERS_TTL_SECONDS = 86400


def node_carriers_key(name):
    return NODE_CARRIERS_KEY_PREFIX + name


def encode_node_carriers(name, *, started, carriers, written=None, previous=None):
    doc = {
        "name": name,
        "started": started,
        "written": written if written is not None else time.time(),
        "carriers": carriers,
        "previous": previous,
    }
    return json.dumps(doc, separators=(",", ":"))


def decode_node_carriers(raw):
    """A kept record, or None for one that is not ours to read (junk is skipped, never an error)."""
    try:
        doc = json.loads(raw)
        doc["started"] = float(doc["started"])
        doc["written"] = float(doc["written"])
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(doc.get("carriers"), dict):
        doc["carriers"] = {}
    prev = doc.get("previous")
    doc["previous"] = prev if isinstance(prev, dict) and "started" in prev and "written" in prev else None
    return doc


# -- calls a node carries, kept past its heartbeat ------------------------------------------

NODE_CALLS_KEY_PREFIX = "lb:nodecalls:"


def node_calls_key(name):
    return NODE_CALLS_KEY_PREFIX + name


def encode_node_calls(name, *, pid, active, unknown, restarted_at=None, written=None):
    """What `name` carries: `active` (id -> calls it saw answered and not yet ended) and `unknown`
    (id -> calls its previous process left up). Written with every heartbeat, kept dialog_timeout_s."""
    return json.dumps(
        {
            "name": name,
            "pid": pid,
            "written": written if written is not None else time.time(),
            "active": {str(k): n for k, n in active.items() if n},
            "unknown": {str(k): n for k, n in unknown.items() if n},
            "restarted_at": restarted_at,
        },
        separators=(",", ":"),
    )


def decode_node_calls(raw):
    doc = json.loads(raw)
    for key in ("active", "unknown"):
        doc[key] = {int(k): int(n) for k, n in (doc.get(key) or {}).items() if int(n) > 0}
    return doc


# -- what keepalived says of a node's floating address ---------------------------------------

VRRP_KEY_PREFIX = "lb:vrrp:"
VRRP_STATES = ("master", "backup", "fault", "stop")


def vrrp_key(name):
    return VRRP_KEY_PREFIX + name


def encode_vrrp(name, state, at=None):
    return json.dumps({"name": name, "state": state, "at": at if at is not None else time.time()}, separators=(",", ":"))


def decode_vrrp(raw):
    """keepalived's last word on a node: master holds the address, any other state does not."""
    doc = json.loads(raw)
    state = str(doc.get("state", "")).lower()
    return {"name": doc.get("name"), "state": state, "at": float(doc.get("at") or 0.0), "holds": state == "master"}


# -- DNS: a destination's host name that stopped resolving -------------------------------
#
# lb:dnsfail:<node>  hash: destination id -> JSON {"node", "name", "why", "since", "using"}, one field per
# destination whose host name fails on that proxy. Each heartbeat rewrites it whole (deleted when no name
# fails; a clean stop deletes it too). "why": NXDOMAIN, SERVFAIL (REFUSED), timeout...; "since": epoch of
# the first failure in a row; "using": the last known addresses the proxy still sends to
# ("127.0.0.1:5070", "[::1]:5060;transport=tcp"), [] when it never resolved.
# It outlives its proxy's heartbeat (DNS_KEEP_SECONDS) on purpose: a proxy that dies with names failing
# leaves what it last saw, and while no proxy reports, the panel shows those names as unknown with who
# saw them fail, instead of dropping the warning as if the names resolved again. (It was lb:dns:<id>,
# with the heartbeat's TTL: the warning vanished with the proxy.)

DNS_KEY_PREFIX = "lb:dnsfail:"
DNS_KEEP_SECONDS = 86400


def dns_key(node):
    return f"{DNS_KEY_PREFIX}{node}"


def encode_dns_warning(node, name, why, since, using):
    return json.dumps({"node": node, "name": name, "why": why, "since": since, "using": list(using)}, separators=(",", ":"))


def decode_dns_warning(raw):
    doc = json.loads(raw)
    return {
        "node": str(doc.get("node") or ""),
        "name": str(doc.get("name") or ""),
        "why": str(doc.get("why") or "unknown error"),
        "since": float(doc["since"]) if doc.get("since") is not None else None,
        "using": [str(a) for a in doc.get("using") or ()],
    }


# -- dialogs: the calls up, as cluster state ---------------------------------------------
#
# lb:dialogs:<node>       hash: Call-ID -> encode_dialog(...), one field per call answered through
#                         <node> (or adopted by it) and not yet ended
# lb:dialogcounts:<node>  hash: destination id -> fields of lb:dialogs:<node> on it; changed only by
#                         the scripts below, in step with the records, so a reader sums these (small)
#                         hashes instead of reading every record. Its field "~" is the epoch of the
#                         node's last flush: while the hash exists, readers count <node>'s calls from
#                         it (a node without one, e.g. from before dialog records: its heartbeat)
#
# A proxy batches its changes in memory and runs DIALOGS_FLUSH_LUA within DIALOG_FLUSH_SECONDS of a
# change, and once a second with its claims (the "~" stamp and the TTLs); a node
# whose heartbeat expired has its two hashes moved whole into a live node's by DIALOGS_CLAIM_LUA.
# Each call is in exactly one node's hash, so summing every node's counts neither loses a dead
# node's calls nor counts a call twice. Both hashes carry a TTL of dialog_timeout_s, renewed by
# each flush: records nobody flushes or claims any more go with the calls they describe.

DIALOGS_KEY_PREFIX = "lb:dialogs:"
DIALOG_COUNTS_KEY_PREFIX = "lb:dialogcounts:"
DIALOG_FLUSH_SECONDS = 0.1  # the most a SIGKILLed node's records can lag what it had done


def dialogs_key(node):
    return DIALOGS_KEY_PREFIX + node


def dialog_counts_key(node):
    return DIALOG_COUNTS_KEY_PREFIX + node


@dataclass(frozen=True, slots=True)
class DialogRecord:
    call_id: str
    destination_id: int
    server_id: int | None
    setid: int | None
    from_tag: str
    to_tag: str
    node: str  # the node that saw the 2xx (the record may since have moved to another's hash)
    start: float  # epoch seconds of the 2xx


# json.dumps with any non-default argument builds a new encoder on every call: one encoder for
# the records written per call (two per call, in the 100 ms flush)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def encode_dialog(destination_id, server_id, setid, from_tag, to_tag, node, start):
    """A record's value (the Call-ID is its field). "d" comes first: the scripts read it with a pattern."""
    return _COMPACT_JSON.encode(
        {"d": destination_id, "s": server_id, "set": setid, "ft": from_tag, "tt": to_tag, "n": node, "t": round(start, 3)}
    )


def decode_dialog(call_id, raw):
    doc = json.loads(raw)
    return DialogRecord(
        call_id=call_id.decode() if isinstance(call_id, bytes) else call_id,
        destination_id=int(doc["d"]),
        server_id=doc.get("s"),
        setid=doc.get("set"),
        from_tag=doc.get("ft") or "",
        to_tag=doc.get("tt") or "",
        node=doc.get("n") or "",
        start=float(doc.get("t") or 0.0),
    )


def decode_dialog_counts(raw):
    """An lb:dialogcounts hash as HGETALL returns it: destination id -> calls (0 and junk dropped)."""
    out = {}
    for k, v in raw.items():
        try:
            n = int(v)
            if n > 0:
                out[int(k)] = n
        except (TypeError, ValueError):
            continue
    return out


# KEYS: lb:dialogs:<me>, lb:dialogcounts:<me>, then (lb:dialogs:<x>, lb:dialogcounts:<x>) for every
# other node that may hold records. ARGV: ttl, now, expect, n, n x (call-id, destination id,
# record), m, m x call-id.
# Adds go to our hash; each removal is looked for in ours first, then in the others' (a call we
# adopt by its BYE, before or without a claim). Returns the Call-IDs removed from another's hash.
# `expect` 1: this process has written its counts before, so they must exist; if they do not,
# Redis lost them (restarted empty, flushed, a replica without them, or they expired while the
# proxy could not reach it): nothing is written and 0 is returned, so the proxy writes every call
# it carries at once. Writing this batch and the "~" stamp alone would make a hash of a few calls
# look like the whole truth, and the panel would read 0 calls on a box that carries them.
DIALOGS_FLUSH_LUA = """
local ttl = tonumber(ARGV[1])
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 2]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1)
  end
  i = i + 3
end
local elsewhere = {}
n = tonumber(ARGV[i]); i = i + 1
-- after the removals, optionally: how many of KEYS are ours or another node's; past them come
-- our sibling workers' (--processes), where closing a record is not taking a call over
local upto = tonumber(ARGV[i + n]) or #KEYS
for _ = 1, n do
  local cid = ARGV[i]; i = i + 1
  for k = 1, #KEYS, 2 do
    local rec = redis.call('HGET', KEYS[k], cid)
    if rec then
      redis.call('HDEL', KEYS[k], cid)
      local d = string.match(rec, '"d":(%d+)')
      if d and redis.call('HINCRBY', KEYS[k + 1], d, -1) <= 0 then redis.call('HDEL', KEYS[k + 1], d) end
      if k > 1 and k <= upto then table.insert(elsewhere, cid) end
      break
    end
  end
end
redis.call('HSET', KEYS[2], '~', ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return elsewhere
"""

# KEYS: lb:node:<x>, lb:dialogs:<x>, lb:dialogcounts:<x>, lb:dialogs:<me>, lb:dialogcounts:<me>.
# ARGV: ttl. Moves every record of <x> into ours unless <x> has a heartbeat again; returns the
# moved records as HGETALL does (empty when another node claimed them first), or nil.
DIALOGS_CLAIM_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local all = redis.call('HGETALL', KEYS[2])
for j = 1, #all, 2 do
  if redis.call('HSETNX', KEYS[4], all[j], all[j + 1]) == 1 then
    local d = string.match(all[j + 1], '"d":(%d+)')
    if d then redis.call('HINCRBY', KEYS[5], d, 1) end
  end
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[1]))
return all
"""
