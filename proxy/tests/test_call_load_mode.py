"""Algorithm 10: the seed's load (calls per unit of weight) by default; a set's load_mode
"calls" gives Kamailio's alg 10, the fewest active calls whatever the weights."""

from lbcore import contract
from lbcore.contract import DestinationSpec
from proxy import selection


def _dests(weights):
    return [
        DestinationSpec(
            id=i + 1, setid=1, uri=f"sip:127.0.0.1:{5081 + i}", host="127.0.0.1", port=5081 + i, transport="udp", weight=w
        )
        for i, w in enumerate(weights)
    ]


LOADS = {1: 6, 2: 3}  # 6 calls on weight 4 (1.75 per unit) against 3 on weight 1 (4 per unit)


def test_weighted_mode_counts_calls_per_unit_of_weight():
    assert [d.id for d in selection.order(10, _dests((4, 1)), loads=LOADS)] == [1, 2]
    assert [d.id for d in selection.order(10, _dests((4, 1)), loads=LOADS, load_mode=contract.LOAD_WEIGHTED)] == [1, 2]


def test_calls_mode_is_kamailios_plain_least_calls():
    assert [d.id for d in selection.order(10, _dests((4, 1)), loads=LOADS, load_mode=contract.LOAD_CALLS)] == [2, 1]


def test_the_table_carries_the_load_mode_and_an_old_table_means_weighted():
    sets = [{"setid": 1, "name": "", "algorithm": 10, "failover_codes": [503], "destinations": [], "load_mode": "calls"}]
    assert contract.decode_table(contract.encode_table(1, sets, [], {})).sets[1].load_mode == "calls"
    del sets[0]["load_mode"]
    assert contract.decode_table(contract.encode_table(1, sets, [], {})).sets[1].load_mode == "weighted"
