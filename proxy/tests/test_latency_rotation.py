"""Algorithm 13 as Kamailio's latency-optimised dispatching: priority lowered by RTT, and the
destinations of the best band take turns instead of the single fastest box taking every call."""

import collections

from lbcore.contract import DestinationSpec
from proxy import selection
from proxy.selection import SetState

FAST = {1: 4.0, 3: 7.5, 5: 9.9}  # one 10 ms band
SLOW = {2: 41.0, 4: 48.0}  # a slower band


def _dests(n=5, priority=0):
    return [
        DestinationSpec(
            id=i, setid=1, uri=f"sip:127.0.0.1:{5080 + i}", host="127.0.0.1", port=5080 + i, transport="udp", priority=priority
        )
        for i in range(1, n + 1)
    ]


def _firsts(dests, rtts, calls):
    state = SetState(seed=1)
    return collections.Counter(selection.order(13, dests, state=state, rtts=rtts)[0].id for _ in range(calls))


def test_every_destination_of_the_fastest_band_gets_a_fair_share_and_the_slow_band_none():
    got = _firsts(_dests(), {**FAST, **SLOW}, 3000)
    assert got == {1: 1000, 3: 1000, 5: 1000}


def test_failover_walks_the_fast_band_before_the_slow_one():
    order = selection.order(13, _dests(), state=SetState(), rtts={**FAST, **SLOW})
    assert {d.id for d in order[:3]} == set(FAST) and {d.id for d in order[3:]} == set(SLOW)


def test_the_slow_band_takes_the_calls_when_the_fast_one_is_unusable():
    slow_only = [d for d in _dests() if d.id in SLOW]
    assert _firsts(slow_only, SLOW, 100) == {2: 50, 4: 50}


def test_kamailios_formula_for_rows_with_a_priority():
    # dispatcher_admin.xml's table: priority 30, latency 21/91/61/19/32/0/201 -> 30/27/28/30/29/30/24
    got = [selection.latency_band(30, rtt) for rtt in (21, 91, 61, 19, 32, 0, 201)]
    assert got == [30, 27, 28, 30, 29, 30, 24]
    rtts = {i + 1: float(rtt) for i, rtt in enumerate((21, 91, 61, 19, 32, 0, 201))}
    assert _firsts(_dests(7, priority=30), rtts, 300) == {1: 100, 4: 100, 6: 100}  # the table's 33% each


def test_a_destination_without_an_rtt_yet_comes_after_the_measured_ones():
    order = selection.order(13, _dests(3), state=SetState(), rtts={2: 80.0, 3: 60.0})
    assert [d.id for d in order] == [3, 2, 1]
