"""Turn probe outcomes into health: streaks, lb:health, RTT samples, and state changes.

A probe that changes nothing costs Redis only (one pipeline for the whole round);
a change of state goes through dispatcher.services.change_health, which writes the
row and the StateEvent and, after commit, lb:health and the lb:events message.
"""

import json
import logging
import time
from dataclasses import dataclass, field, replace

from django.db import transaction

from dispatcher.choices import Cause
from dispatcher.models import Destination
from dispatcher.services import change_health
from lbcore.contract import HEALTH_KEY, RTT_SAMPLES, SUSPECT, UNKNOWN, UP, decode_health, encode_health, rtt_key
from lbcore.rules import effective_health
from probes.machine import is_good, step

log = logging.getLogger(__name__)

STREAK_KEY = "lb:probe:streak"  # hash: destination id -> +n good / -n failed probes in a row
STREAK_CAP = 1_000_000

# Atomic, so the count stays right whichever worker records which probe.
_STREAK = """
local out = {}
local cap = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local s = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if ARGV[i + 1] == '1' then
    if s > 0 then s = math.min(s + 1, cap) else s = 1 end
  else
    if s < 0 then s = math.max(s - 1, -cap) else s = -1 end
  end
  redis.call('HSET', KEYS[1], ARGV[i], s)
  out[#out + 1] = s
end
return out
"""

# Store a probe's health only if the state is still the one we decided from: the proxy
# may have marked the destination suspect meanwhile, and that must not be overwritten.
_STORE_IF_STATE = """
local n = 0
for i = 1, #ARGV, 3 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  local state = ''
  if raw then
    local ok, doc = pcall(cjson.decode, raw)
    if ok and type(doc) == 'table' and type(doc.state) == 'string' then state = doc.state end
  end
  if state == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n
"""


@dataclass
class Recorded:
    probed: int = 0
    good: int = 0
    transitions: list = field(default_factory=list)  # (id, old, new, reason)
    skipped_writes: int = 0


def record(r, outcomes, thresholds, *, db_health=None, suspect_reason="", row_codes=None):
    """Apply `outcomes` (probes.prober.Outcome) to each destination's health.

    `db_health`: id -> health as the rows hold it, for destinations lb:health does not
    know yet (a flushed Redis) and to notice rows that disagree with Redis.
    `suspect_reason`: the proxy asked for this probe (probe_now) because it suspects
    the destination. Its suspect mark may not have reached lb:health yet (it is
    written off the proxy's event loop), so the probe is judged as a suspect's
    whatever lb:health says: one failure confirms it down.
    `row_codes`: id -> the reply codes that count as alive for that row (its set's added to the
    probe settings'); a row not in it is judged by `thresholds.reply_codes`.
    Callers hold each destination busy (probes.claims) while this runs.
    """
    db_health = db_health or {}
    result = Recorded(probed=len(outcomes))
    if not outcomes:
        return result
    now = time.time()
    ids = [o.id for o in outcomes]
    row_codes = row_codes or {}
    limits = [replace(thresholds, reply_codes=row_codes[o.id]) if o.id in row_codes else thresholds for o in outcomes]
    goods = [is_good(o, t.reply_codes) for o, t in zip(outcomes, limits)]
    result.good = sum(goods)
    streak_args = [STREAK_CAP]
    for i, good in zip(ids, goods):
        streak_args += [i, 1 if good else 0]
    raws = r.hmget(HEALTH_KEY, ids)
    streaks = r.register_script(_STREAK)(keys=[STREAK_KEY], args=streak_args)

    changes, store_args = [], []
    pipe = r.pipeline(transaction=False)
    for outcome, raw, streak, limit in zip(outcomes, raws, streaks, limits):
        current, raw_state = _current(raw, db_health.get(outcome.id, UNKNOWN), now)
        basis = current
        if suspect_reason and current.state in (UP, UNKNOWN):
            basis = replace(current, state=SUSPECT)
        st = step(basis, outcome, int(streak), limit, now, suspect_reason=suspect_reason)
        changed = st.health.state != current.state
        if not changed and basis is not current:
            st = replace(st, health=replace(st.health, since=current.since), changed=False)
        row_state = db_health.get(outcome.id)
        if changed or (row_state is not None and row_state != st.health.state):
            changes.append((outcome.id, current.state, st))
        else:
            store_args += [outcome.id, raw_state, encode_health(st.health)]
        sample = json.dumps({"t": round(outcome.at, 3), "rtt_ms": outcome.rtt_ms, "code": outcome.code}, separators=(",", ":"))
        pipe.lpush(rtt_key(outcome.id), sample)
        pipe.ltrim(rtt_key(outcome.id), 0, RTT_SAMPLES - 1)
    if store_args:
        r.register_script(_STORE_IF_STATE)(keys=[HEALTH_KEY], args=store_args, client=pipe)
    replies = pipe.execute()
    if store_args:
        result.skipped_writes = len(store_args) // 3 - int(replies[-1])

    # One transaction for the round's changes: one commit instead of one per destination
    # (a whole site going down is hundreds of changes at once); the events go out after it.
    with transaction.atomic():
        for dest_id, old, st in changes:
            try:
                if change_health(Destination(pk=dest_id), st.health, cause=Cause.PROBE, reason=st.reason, observed=old):
                    result.transitions.append((dest_id, old, st.health.state, st.reason))
            except Destination.DoesNotExist:
                log.info("probe result dropped: destination id=%s was deleted", dest_id)
    return result


def _current(raw, row_state, now):
    """Health as lb:health holds it (the proxy's suspect marks live only there), else the row's;
    and the state lb:health holds as written ("" when none)."""
    live, raw_state = None, ""
    if raw is not None:
        try:
            state = json.loads(raw).get("state", "")
            live, raw_state = decode_health(raw), state
        except (ValueError, AttributeError, TypeError):
            pass
    return effective_health(live, row_state, since=now), raw_state
