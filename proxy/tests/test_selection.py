import collections

import pytest

from lbcore.contract import DestinationSpec
from proxy import selection
from proxy.selection import SetState


def _dests(weights=(50, 30, 20), **kw):
    return [
        DestinationSpec(
            id=i + 1, setid=1, uri=f"sip:127.0.0.1:{5081 + i}", host="127.0.0.1", port=5081 + i, transport="udp", weight=w, **kw
        )
        for i, w in enumerate(weights)
    ]


def _firsts(algorithm, dests, n, **kw):
    state = SetState(seed=1)
    return collections.Counter(selection.order(algorithm, dests, state=state, all_dests=dests, **kw)[0].id for _ in range(n))


def test_it_spreads_smooth_round_robin_by_weight_exactly():
    assert _firsts(4, _dests(), 1000) == {1: 500, 2: 300, 3: 200}


def test_it_interleaves_weighted_round_robin():
    state = SetState()
    seq = [selection.order(4, _dests((5, 1, 1)), state=state)[0].id for _ in range(7)]
    assert seq == [1, 1, 2, 1, 3, 1, 1]  # nginx's smooth sequence, not 1,1,1,1,1,2,3


def test_it_round_robins_plainly_with_equal_weights():
    state = SetState()
    seq = [selection.order(4, _dests((0, 0, 0)), state=state)[0].id for _ in range(6)]
    assert seq == [1, 2, 3, 1, 2, 3]


def test_it_splits_weight_algorithm_exactly_per_cycle():
    assert _firsts(9, _dests(), 1000) == {1: 500, 2: 300, 3: 200}


def test_it_gives_a_dead_destinations_weight_share_to_the_others_in_proportion():
    dests = _dests((50, 30, 20))
    state = SetState(seed=2)
    usable = [d for d in dests if d.id != 1]
    got = collections.Counter(selection.order(9, usable, state=state, all_dests=dests)[0].id for _ in range(1000))
    assert abs(got[2] - 600) <= 50 and abs(got[3] - 400) <= 50


def test_it_splits_relative_weight_by_rweight():
    dests = [d.__class__(**{**{s: getattr(d, s) for s in d.__slots__}, "rweight": r}) for d, r in zip(_dests(), (60, 30, 10))]
    got = _firsts(11, dests, 3000)
    assert abs(got[1] / 3000 - 0.6) < 0.05 and abs(got[3] / 3000 - 0.1) < 0.05


@pytest.mark.parametrize("algorithm", [0, 1, 2, 3])
def test_it_hashes_the_same_key_to_the_same_destination(algorithm):
    dests = _dests()
    first = selection.order(algorithm, dests, key=b"call-42@host")
    assert all(selection.order(algorithm, dests, key=b"call-42@host") == first for _ in range(5))


def test_it_spreads_a_dead_destinations_hash_keys_over_all_the_others():
    dests = _dests((1, 1, 1, 1, 1))
    keys = [b"call-%d" % i for i in range(3000)]
    before = {k: selection.order(0, dests, key=k)[0].id for k in keys}
    usable = [d for d in dests if d.id != 3]
    after = {k: selection.order(0, usable, key=k)[0].id for k in keys}
    moved = collections.Counter(after[k] for k in keys if before[k] == 3)
    assert set(moved) == {1, 2, 4, 5}  # not all onto one neighbour (Kamailio issue 2361)
    assert min(moved.values()) > 0.15 * sum(moved.values())
    assert all(after[k] == before[k] for k in keys if before[k] != 3)  # nobody else moves


def test_it_hashes_evenly():
    got = collections.Counter(selection.order(0, _dests((1, 1, 1)), key=b"k%d" % i)[0].id for i in range(3000))
    assert all(900 < c < 1100 for c in got.values())


def test_it_orders_by_priority_highest_first():
    dests = [d.__class__(**{**{s: getattr(d, s) for s in d.__slots__}, "priority": p}) for d, p in zip(_dests(), (3, 10, 5))]
    assert [d.id for d in selection.order(8, dests)] == [2, 3, 1]


def test_it_sends_call_load_to_the_least_loaded_per_weight():
    dests = _dests((2, 1, 1))
    assert [d.id for d in selection.order(10, dests, loads={1: 4, 2: 1, 3: 3})] == [2, 1, 3]


def test_it_skips_a_destination_at_maxload():
    dests = _dests((1, 1), maxload=5)
    assert [d.id for d in selection.order(10, dests, loads={1: 5, 2: 9})] == []
    assert [d.id for d in selection.order(10, dests, loads={1: 4, 2: 9})] == [1]


def test_it_prefers_the_lowest_probe_rtt():
    assert [d.id for d in selection.order(13, _dests(), rtts={1: 30.0, 2: 2.5})] == [2, 1, 3]


def test_it_shuffles_randomly_but_covers_everyone():
    got = _firsts(6, _dests(), 3000)
    assert all(800 < c < 1200 for c in got.values())


@pytest.mark.parametrize("algorithm", selection.ALGORITHMS)
def test_every_algorithm_returns_each_usable_destination_once(algorithm):
    dests = _dests()
    order = selection.order(algorithm, dests, key=b"x", state=SetState(), loads={}, rtts={}, all_dests=dests)
    assert sorted(d.id for d in order) == [1, 2, 3]
    assert selection.order(algorithm, [], key=b"x") == []
