"""Kamailio's probing state machine, as a pure function of (health now, one probe, streak).

- `probing_threshold` failed probes in a row take a destination down
  (ds_probing_threshold); `inactive_threshold` good replies in a row bring it back
  up (ds_inactive_threshold).
- A destination never probed (unknown) is up at its first good reply: Kamailio
  starts destinations active, so only coming back from down needs the streak.
- A suspect (the proxy saw a 5xx or a timeout on an INVITE) is settled by one
  probe: a failure confirms it down at once, a good reply clears it.
- A local timeout is never a good reply, whatever the reply codes say: Kamailio
  turns it into a 408 that `class=4` would accept, and we do not repeat that.

The streak is signed: +n good replies in a row, -n failures in a row. It is kept in
Redis and updated atomically (probes/recording.py), so this function stays pure.
"""

from dataclasses import dataclass, replace

from dispatcher.validators import is_good_reply
from lbcore.contract import DOWN, SUSPECT, UNKNOWN, UP, Health


@dataclass(frozen=True, slots=True)
class Thresholds:
    probing: int = 3
    inactive: int = 1
    reply_codes: tuple = (frozenset({200}), frozenset({2}))  # every 2xx, as Kamailio


@dataclass(frozen=True, slots=True)
class Step:
    health: Health  # what lb:health should now hold
    changed: bool
    reason: str  # why the state changed (for the StateEvent); "" when it did not


def is_good(outcome, reply_codes):
    return outcome.code is not None and is_good_reply(outcome.code, reply_codes)


def next_streak(streak, good):
    if good:
        return streak + 1 if streak > 0 else 1
    return streak - 1 if streak < 0 else -1


def step(current, outcome, streak, thresholds, now, *, suspect_reason=""):
    """`streak` already includes this probe (see next_streak)."""
    good = is_good(outcome, thresholds.reply_codes)
    fails = -streak if streak < 0 else 0
    state = current.state
    new_state, reason = state, ""
    if good:
        if state == UNKNOWN:
            new_state, reason = UP, outcome.status
        elif state == SUSPECT:
            new_state, reason = UP, _after_suspect(outcome.status, suspect_reason or current.reason)
        elif state == DOWN and streak >= thresholds.inactive:
            new_state, reason = UP, _after(outcome.status, streak)
    else:
        if state == SUSPECT:
            new_state, reason = DOWN, _after_suspect(outcome.status, suspect_reason or current.reason)
        elif state in (UP, UNKNOWN) and fails >= thresholds.probing:
            new_state, reason = DOWN, _after(outcome.status, fails)
    changed = new_state != state
    health = replace(
        current,
        state=new_state,
        rtt_ms=outcome.rtt_ms,
        since=now if changed else current.since,
        fails=fails,
        code=outcome.code,
        reason=outcome.status,
    )
    return Step(health, changed, reason)


def _after(status, n):
    return status if n == 1 else f"{status} after {n} probes"


def _after_suspect(status, suspect_reason):
    return f"{status} (suspect: {suspect_reason})" if suspect_reason else f"{status} (suspect)"
