"""The rules more than one process needs, each written once: the proxy routes by them, the
prober probes by them, the panel, the API and JSON-RPC show them.

Plain functions on plain values (states are the strings of lbcore.contract), so the proxy's hot
path pays one call and the panel can pass a Django row wherever a destination is asked for:
anything with `admin_state` will do.
"""

import time

from lbcore.contract import ACTIVE, DOWN, SUSPECT, Health


def usable(dest, health, hold=None, now=None):
    """Whether `dest` takes new calls: its admin state is active and its health is not down.

    `health` is a contract.Health or None (never probed: usable). A suspect mark (a proxy saw a
    5xx or a timeout) counts as down until a probe settles it, or, given `hold` seconds, until it
    is that old: a proxy without a prober must not lose a server for good. Called per destination
    per INVITE: keep it a few comparisons.
    """
    if dest.admin_state != ACTIVE:
        return False
    if health is None:
        return True
    state = health.state
    if state == DOWN:
        return False
    if state == SUSPECT:
        return hold is not None and (now if now is not None else time.time()) - health.since >= hold
    return True


def effective_health(live, recorded_state, since=0.0):
    """The health the proxies act on (lb:health, `live`) when Redis has one, else the last one
    recorded (the database row's `recorded_state`, as of `since`), as a contract.Health."""
    if live is not None:
        return live
    return Health(state=recorded_state, since=since)
