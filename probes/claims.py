"""Who probes what, when, across any number of workers: atomic claims in Redis.

- A round is due when `ping_interval` has passed since the last one started, by the
  Redis clock (one clock for every worker); the check-and-start is one script, so
  however many ticks arrive at once exactly one starts the round. Reading the
  interval on every tick is what makes a new ping_interval apply without a restart.
- Each server (probes.prober.server_key: transport, resolved host, port) is claimed once
  per round (`lb:probe:claimed` remembers the last round that claimed it) and held busy
  while its probe is out, so a second worker running the same round skips it and a
  slow round never overlaps the next one for that server. `probe_now` and the recovery
  probes take the same busy lock. Claiming the server, not its rows, is what keeps a
  box listed in several sets at one probe per round whichever worker sees which row.

These keys are the prober's own; the proxy never reads them (see lbcore/contract.py).
"""

ROUND_STARTED_KEY = "lb:probe:round:started"
ROUND_ID_KEY = "lb:probe:round:id"
CLAIMED_KEY = "lb:probe:claimed"
BUSY_PREFIX = "lb:probe:busy:"

# A tick lands anywhere within its second; half a tick of slack keeps the mean
# spacing of rounds at the interval instead of interval + 0.5 s.
TICK_SLACK = 0.5

_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if now - last + tonumber(ARGV[2]) < tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.6f', now))
return redis.call('INCR', KEYS[2])
"""

_CLAIM = """
local round = tonumber(ARGV[1])
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local last = tonumber(redis.call('HGET', KEYS[1], id) or '0')
  if last < round then
    if redis.call('SET', KEYS[2] .. id, ARGV[2], 'NX', 'PX', ARGV[3]) then
      redis.call('HSET', KEYS[1], id, ARGV[1])
      out[#out + 1] = id
    end
  end
end
return out
"""

_RELEASE = """
local n = 0
for i = 2, #ARGV do
  local key = KEYS[1] .. ARGV[i]
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""


def _script(client, source):
    # register_script only hashes the source; EVALSHA falls back to EVAL once per server.
    return client.register_script(source)


def start_round_if_due(r, interval):
    """The new round's id when a round is due now (and this caller starts it), else None."""
    round_id = _script(r, _DUE)(keys=[ROUND_STARTED_KEY, ROUND_ID_KEY], args=[interval, TICK_SLACK])
    return int(round_id) or None


RECOVERY_KEY = "lb:probe:recovery"


def start_recovery_if_due(r, interval):
    """True for exactly one caller per `interval` seconds: time to probe the destinations that are down."""
    return bool(r.set(RECOVERY_KEY, "1", nx=True, px=max(int(interval * 1000 - TICK_SLACK * 1000), 100)))


def new_round_id(r):
    """A round started by hand (management command, bench): numbered like the rest."""
    return int(r.incr(ROUND_ID_KEY))


def claim(r, round_id, servers, *, token, hold_ms):
    """Claim `servers` (server keys) for `round_id`; returns the keys this caller now holds (the
    others are already claimed for this round, or still busy from an earlier probe)."""
    if not servers:
        return []
    got = _script(r, _CLAIM)(keys=[CLAIMED_KEY, BUSY_PREFIX], args=[round_id, token, int(hold_ms), *servers])
    return [k.decode() if isinstance(k, bytes) else k for k in got]


def hold(r, server, *, token, hold_ms):
    """Hold one server busy (probe_now, recovery); False when a probe of it is already out."""
    return bool(r.set(f"{BUSY_PREFIX}{server}", token, nx=True, px=int(hold_ms)))


def release(r, servers, *, token):
    if not servers:
        return 0
    return int(_script(r, _RELEASE)(keys=[BUSY_PREFIX], args=[token, *servers]))
