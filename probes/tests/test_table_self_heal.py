"""A Redis that lost lb:table (restart without persistence, FLUSHDB) gets it back from the next beat tick."""

from dispatcher.models import Destination, DispatcherSet
from lbcore import contract
from probes.tasks import ensure_table


def test_a_missing_table_is_republished(db, redis):
    dset = DispatcherSet.objects.create(setid=1)
    Destination.objects.create(dset=dset, uri="sip:127.0.0.1:5081", duid="ast1")
    assert ensure_table(redis) is True
    table = contract.decode_table(redis.get(contract.TABLE_KEY))
    assert [d.duid for d in table.sets[1].destinations] == ["ast1"]


def test_a_present_table_is_left_alone(db, redis):
    redis.set(contract.TABLE_KEY, "untouched")
    assert ensure_table(redis) is False
    assert redis.get(contract.TABLE_KEY) == b"untouched"
