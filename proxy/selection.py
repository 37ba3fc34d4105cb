"""Dispatcher algorithms (Kamailio numbering): order the usable destinations of a set.

`order(algorithm, usable, key, state, loads, rtts)` returns the destinations in the order
to try them: the first takes the call, failover walks the rest. Everything it needs is
passed in; the only memory is `SetState` (round-robin positions), owned by the caller.

- 0/1/2/3 hash Call-ID / From URI / To URI / R-URI with rendezvous (highest random
  weight) hashing: a key's order depends only on the key and each destination's id,
  so when a destination dies its keys spread over all the others by their own scores
  rather than all landing on one neighbour (Kamailio issue 2361).
- 4 smooth weighted round-robin (nginx): equal weights give plain round-robin.
- 6 random. 8 priority (higher first). 9 weight: a shuffled slot table, so the split is
  exact over each cycle. 10 call load: fewest calls per unit of weight (the seed's
  description; the set's load_mode "calls" gives Kamailio's plain fewest calls), skipping
  those at maxload. 11 relative weight: probability rweight / sum over the usable ones.
- 13 latency, as Kamailio's ds_manage_route_algo13: each destination's priority is lowered
  by its probe RTT (see `latency_band`), the highest band takes the calls, and within a band
  the destinations take turns (rotation from the one after the last chosen), so the fastest
  box is not a herd's only target. Kamailio's formula is exact for rows with a priority;
  rows with priority 0 (where Kamailio would ignore latency) fall into LATENCY_BAND_MS-wide
  bands of RTT, and a row without an RTT yet goes after the measured ones (Kamailio counts it 0 ms).
"""

import random

from lbcore.contract import LOAD_CALLS
from lbcore.hashing import rendezvous

ALGORITHMS = (0, 1, 2, 3, 4, 6, 8, 9, 10, 11, 13)
HASH_ALGORITHMS = (0, 1, 2, 3)
LATENCY_BAND_MS = 10  # alg 13, rows with priority 0: RTTs within the same 10 ms share the calls


class SetState:
    """What an algorithm remembers between calls for one set."""

    __slots__ = ("wrr", "slots", "slot_ids", "cursor", "rng", "last")

    def __init__(self, seed=None):
        self.wrr = {}  # destination id -> current weight (smooth WRR)
        self.slots = None
        self.slot_ids = None
        self.cursor = 0
        self.rng = random.Random(seed)
        self.last = None  # alg 13: the id chosen last, the rotation starts after it


def _weight(dest):
    return dest.weight if dest.weight > 0 else 0


def smooth_wrr(usable, state):
    weights = [_weight(d) for d in usable]
    if not any(weights):
        weights = [1] * len(usable)
    cw = state.wrr
    total = 0
    best = None
    best_cw = None
    for d, w in zip(usable, weights):
        c = cw.get(d.id, 0) + w
        cw[d.id] = c
        total += w
        if best is None or c > best_cw:
            best, best_cw = d, c
    cw[best.id] = best_cw - total
    # forget destinations that left the usable list so they rejoin without a backlog
    if len(cw) > len(usable):
        keep = {d.id for d in usable}
        for k in [k for k in cw if k not in keep]:
            del cw[k]
    rest = sorted((d for d in usable if d is not best), key=lambda d: cw[d.id], reverse=True)
    return [best, *rest]


def _slot_table(dests, weight_of, rng):
    weights = [max(weight_of(d), 0) for d in dests]
    if not any(weights):
        weights = [1] * len(dests)
    total = sum(weights)
    # scale to 100 slots like Kamailio when the weights are percentages, else one per unit
    slots = []
    for d, w in zip(dests, weights):
        slots.extend([d.id] * w)
    if total > 1000:  # keep the table small: proportional 1000 slots
        slots = []
        for d, w in zip(dests, weights):
            slots.extend([d.id] * max(1, round(w * 1000 / total)))
    rng.shuffle(slots)
    return slots


def weighted_slots(usable, state, all_dests, weight_of=_weight):
    """Alg 9: walk a shuffled slot table built over the whole set; slots of unusable
    destinations are skipped, so their share goes to the others in proportion."""
    ids = tuple(d.id for d in all_dests)
    if state.slot_ids != ids:
        state.slots = _slot_table(all_dests, weight_of, state.rng)
        state.slot_ids = ids
        state.cursor = 0
    by_id = {d.id: d for d in usable}
    slots = state.slots
    n = len(slots)
    first = None
    for _ in range(n):
        did = slots[state.cursor % n]
        state.cursor += 1
        if did in by_id:
            first = by_id[did]
            break
    if first is None:
        first = usable[0]
    rest = _weighted_shuffle([d for d in usable if d is not first], weight_of, state.rng)
    return [first, *rest]


def _weighted_shuffle(dests, weight_of, rng):
    out = []
    pool = list(dests)
    while pool:
        weights = [max(weight_of(d), 0) for d in pool]
        if not any(weights):
            rng.shuffle(pool)
            out.extend(pool)
            break
        pick = rng.choices(range(len(pool)), weights=weights)[0]
        out.append(pool.pop(pick))
    return out


def rweight(usable, state):
    return _weighted_shuffle(usable, lambda d: d.rweight if d.rweight > 0 else _weight(d), state.rng)


def call_load(usable, state, loads, by_weight=True):
    """Alg 10: least active calls (per unit of weight unless `by_weight` is off, Kamailio's
    alg 10); at maxload a destination takes no more."""
    candidates = []
    for d in usable:
        load = loads.get(d.id, 0)
        if d.maxload and load >= d.maxload:
            continue
        w = d.weight if d.weight > 0 else 1
        candidates.append(((load + 1) / w if by_weight else load, -w, d.id, d))
    candidates.sort(key=lambda c: c[:3])
    return [c[3] for c in candidates]


def latency_band(priority, rtt_ms):
    """Alg 13's adjusted priority, higher first. With a priority: Kamailio's
    priority - latency // priority when the latency exceeds it, at least 1. Without one: minus
    the RTT's LATENCY_BAND_MS band, so every prioritised row ranks first, as in Kamailio. No RTT yet: last."""
    if rtt_ms is None:
        return float("-inf")
    latency = int(rtt_ms)
    if priority > 0:
        return max(1, priority - latency // priority) if latency > priority else priority
    return -(latency // LATENCY_BAND_MS)


def latency(usable, rtts, state):
    n = len(usable)
    start = 0
    if state.last is not None:
        for i, d in enumerate(usable):
            if d.id == state.last:
                start = i + 1
                break
    rotated = usable[start:] + usable[:start] if start < n else list(usable)
    out = sorted(rotated, key=lambda d: -latency_band(d.priority, rtts.get(d.id)))  # stable: the rotation orders a band
    state.last = out[0].id
    return out


def priority(usable):
    return sorted(usable, key=lambda d: (-d.priority, d.id))


def order(algorithm, usable, key=b"", state=None, loads=None, rtts=None, all_dests=None, load_mode="weighted"):
    """Destinations in try order. `usable` keeps the set's order; `key` is the hashed field;
    `load_mode` is the set's (lbcore.contract.LOAD_*), read by algorithm 10 only."""
    if not usable:
        return []
    if state is None:
        state = SetState()
    if algorithm in HASH_ALGORITHMS:
        return rendezvous(usable, key)
    if algorithm == 4:
        return smooth_wrr(usable, state)
    if algorithm == 6:
        out = list(usable)
        state.rng.shuffle(out)
        return out
    if algorithm == 8:
        return priority(usable)
    if algorithm == 9:
        return weighted_slots(usable, state, all_dests or usable)
    if algorithm == 10:
        return call_load(usable, state, loads or {}, load_mode != LOAD_CALLS)
    if algorithm == 11:
        return rweight(usable, state)
    if algorithm == 13:
        return latency(usable, rtts or {}, state)
    # unknown numbers behave like Kamailio's default: the first, then the rest in set order
    return list(usable)
