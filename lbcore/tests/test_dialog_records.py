"""The dialog records' contract: the record shape, and the two scripts that keep each call in exactly
one node's hash with its count beside it (run on the test Redis, as the proxies run them)."""

from lbcore.contract import (
    DIALOGS_CLAIM_LUA,
    DIALOGS_FLUSH_LUA,
    decode_dialog,
    decode_dialog_counts,
    dialog_counts_key,
    dialogs_key,
    encode_dialog,
    node_key,
)


def _flush(redis, node, adds=(), removals=(), others=(), now=1000.0, expect=0):
    keys = [dialogs_key(node), dialog_counts_key(node)]
    for other in others:
        keys += [dialogs_key(other), dialog_counts_key(other)]
    args = [3600, now, expect, len(adds)]
    for call_id, did in adds:
        args += [call_id, did, encode_dialog(did, 7, 1, "ft", "tt", node, 999.5)]
    args += [len(removals), *removals]
    return redis.register_script(DIALOGS_FLUSH_LUA)(keys=keys, args=args)


def _counts(redis, node):
    return decode_dialog_counts(redis.hgetall(dialog_counts_key(node)))


def test_a_record_round_trips():
    raw = encode_dialog(12, 3, 2, "a1", "b2", "lb1", 1700000000.1234)
    assert raw.startswith('{"d":12,')  # the scripts read the destination with a pattern
    rec = decode_dialog(b"call-1@x", raw)
    assert (rec.call_id, rec.destination_id, rec.server_id, rec.setid) == ("call-1@x", 12, 3, 2)
    assert (rec.from_tag, rec.to_tag, rec.node, rec.start) == ("a1", "b2", "lb1", 1700000000.123)


def test_counts_skip_the_stamp_and_zeros():
    assert decode_dialog_counts({b"~": b"1000.5", b"4": b"2", b"5": b"0"}) == {4: 2}


def test_a_flush_that_expects_our_hash_and_finds_none_writes_nothing(redis):
    # Redis lost it (restarted empty): a stamp over a partial batch would read as "these are all"
    assert _flush(redis, "lb1", adds=[("c1", 4)], expect=1) == 0
    assert not redis.exists(dialogs_key("lb1"), dialog_counts_key("lb1"))
    assert _flush(redis, "lb1", adds=[("c1", 4)]) == []
    assert _flush(redis, "lb1", adds=[("c2", 4)], expect=1) == []  # there now: a plain flush
    assert _counts(redis, "lb1") == {4: 2}


def test_a_flush_adds_once_and_counts_per_destination(redis):
    _flush(redis, "lb1", adds=[("c1", 4), ("c2", 4), ("c3", 5)])
    _flush(redis, "lb1", adds=[("c1", 4)])  # a batch sent twice changes nothing
    assert _counts(redis, "lb1") == {4: 2, 5: 1}
    assert redis.hlen(dialogs_key("lb1")) == 3
    assert float(redis.hget(dialog_counts_key("lb1"), "~")) == 1000.0
    assert 0 < redis.ttl(dialogs_key("lb1")) <= 3600


def test_a_removal_finds_the_record_in_another_nodes_hash(redis):
    _flush(redis, "lb1", adds=[("c1", 4), ("c2", 4)])
    elsewhere = _flush(redis, "lb2", removals=["c1", "nobody"], others=["lb1"])
    assert elsewhere == [b"c1"]
    assert _counts(redis, "lb1") == {4: 1}
    _flush(redis, "lb1", removals=["c2", "c2"])
    assert _counts(redis, "lb1") == {}
    assert not redis.exists(dialogs_key("lb1"))


def test_a_claim_moves_a_dead_nodes_records_whole_and_once(redis):
    _flush(redis, "lb1", adds=[("c1", 4), ("c2", 5)])
    _flush(redis, "lb2", adds=[("c9", 4)])
    claim = redis.register_script(DIALOGS_CLAIM_LUA)
    redis.set(node_key("lb1"), "{}")
    keys = [node_key("lb1"), dialogs_key("lb1"), dialog_counts_key("lb1"), dialogs_key("lb2"), dialog_counts_key("lb2")]
    assert claim(keys=keys, args=[3600]) is None  # lb1 is alive: nothing moves
    redis.delete(node_key("lb1"))
    moved = claim(keys=keys, args=[3600])
    assert sorted(moved[0::2]) == [b"c1", b"c2"]
    assert _counts(redis, "lb2") == {4: 2, 5: 1}
    assert not redis.exists(dialogs_key("lb1"), dialog_counts_key("lb1"))
    assert claim(keys=keys, args=[3600]) == []  # a second claimer finds nothing


def test_closing_a_record_in_a_sibling_workers_hash_is_no_takeover(redis):
    """Past the optional bound after the removals, the keys are the node's sibling workers': the
    record is closed there all the same, but not reported as taken over."""
    _flush(redis, "dead", adds=[("c1", 4)])
    _flush(redis, "lb-1", adds=[("c2", 4)])
    keys = [dialogs_key("lb"), dialog_counts_key("lb")]
    for other in ("dead", "lb-1"):
        keys += [dialogs_key(other), dialog_counts_key(other)]
    args = [3600, 1000.0, 0, 0, 2, "c1", "c2", 4]  # keys 1..4: ours and another node's; 5..6: a sibling's
    elsewhere = redis.register_script(DIALOGS_FLUSH_LUA)(keys=keys, args=args)
    assert elsewhere == [b"c1"]
    assert _counts(redis, "dead") == {} and _counts(redis, "lb-1") == {}
