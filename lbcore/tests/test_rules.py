"""Each rule more than one process needs, tested where it is defined (lbcore.rules)."""

import time

from lbcore import contract, rules
from lbcore.contract import DOWN, SUSPECT, UP, DestinationSpec, Health


def _dest(admin_state="active"):
    return DestinationSpec(id=1, setid=1, uri="sip:h", host="h", port=5060, transport="udp", admin_state=admin_state)


def test_usable_means_active_and_not_down():
    assert rules.usable(_dest(), None)
    assert rules.usable(_dest(), Health(state=UP))
    assert rules.usable(_dest(), Health(state="unknown"))
    assert not rules.usable(_dest(), Health(state=DOWN))
    assert not rules.usable(_dest(), Health(state=SUSPECT))
    assert not rules.usable(_dest("inactive"), Health(state=UP))
    assert not rules.usable(_dest("disabled"), None)


def test_a_suspect_mark_lapses_after_the_hold_only_when_one_is_given():
    now = time.time()
    assert not rules.usable(_dest(), Health(state=SUSPECT, since=now - 5), 30, now)
    assert rules.usable(_dest(), Health(state=SUSPECT, since=now - 31), 30, now)
    assert not rules.usable(_dest(), Health(state=SUSPECT, since=now - 31))
    assert not rules.usable(_dest(), Health(state=DOWN, since=now - 31), 30, now)
    assert not rules.usable(_dest("inactive"), Health(state=SUSPECT, since=now - 31), 30, now)


def test_effective_health_is_redis_else_the_database_row():
    live = Health(state=DOWN, rtt_ms=3.0, since=5.0, fails=3)
    assert rules.effective_health(live, "up") is live
    recorded = rules.effective_health(None, "up", since=7.0)
    assert (recorded.state, recorded.since, recorded.rtt_ms, recorded.fails) == ("up", 7.0, None, 0)
    assert rules.usable(_dest(), rules.effective_health(None, DOWN)) is False
    assert isinstance(recorded, contract.Health)


def test_flags_read_like_kamcmd():
    assert rules.flag_letters("active", "up", True) == "AP"
    assert rules.flag_letters("active", "down", True) == "IP"
    assert rules.flag_letters("inactive", "up", False) == "I"
    assert rules.flag_letters("disabled", "unknown", False) == "D"
    assert rules.flag_letters("active", "suspect", True) == "ATP"
    assert rules.flag_letters("inactive", None, True) == "IP"  # the admin's list: no health


def test_rpc_flags_are_kamailios_two_letters():
    assert rules.rpc_flags("active", "up", True) == "AP"
    assert rules.rpc_flags("active", "suspect", True) == "TP"
    assert rules.rpc_flags("inactive", "suspect", False) == "IX"
    assert rules.rpc_flags("active", "down", False, extra_flags=contract.FLAG_NOPING) == "IN"
    assert rules.rpc_flags("disabled", "up", False) == "DX"
    assert [rules.state_letter(s) for s in ("active", "inactive", "disabled")] == ["A", "I", "D"]


def test_a_round_probes_what_the_mode_and_the_p_flag_say_and_never_a_disabled_one():
    assert rules.probed("active", False, contract.PROBE_ALL)
    assert rules.probed("inactive", False, contract.PROBE_ALL)  # maintenance is still watched
    assert not rules.probed("active", False, contract.PROBE_FLAGGED, "up")
    assert rules.probed("active", True, contract.PROBE_FLAGGED, "up")
    assert rules.probed("active", False, contract.PROBE_FLAGGED, DOWN)  # else nothing brings it back
    assert not rules.probed("disabled", True, contract.PROBE_ALL, DOWN)
    assert rules.probe_allowed("inactive") and not rules.probe_allowed("disabled")


def test_probing_is_paused_only_by_a_zero():
    assert rules.probing_paused(b"0") and rules.probing_paused("0")
    assert not rules.probing_paused(None)
    assert not rules.probing_paused(b"1")


def test_how_far_a_proxy_is_behind():
    assert rules.versions_behind(7, 7) == 0
    assert rules.versions_behind(7, 4) == 3
    assert rules.versions_behind(7, None) == 7
    assert rules.versions_behind(2, 57) == 1  # Redis lost the table: not current either
    assert rules.versions_behind(None, 4) is None


def test_a_call_no_live_proxy_vouches_for_is_unvouched():
    nodes = [{"name": "a", "restarted_at": 100.0, "unknown": {1: 4}}, {"name": "b", "unknown": {}}]
    records = [
        {"name": "a", "written": 50.0, "active": {2: 9}, "unknown": {}},  # live: its heartbeat vouches
        {"name": "c", "written": 90.0, "active": {2: 1}, "unknown": {3: 2}},  # dead
        {"name": "d", "written": 90.0, "active": {}, "unknown": {}},  # dead with nothing up
    ]
    got = rules.unvouched_calls(nodes, records)
    assert got == {
        1: [rules.Unvouched("a", rules.RESTARTED, 100.0, 4)],
        2: [rules.Unvouched("c", rules.NOT_REPORTING, 90.0, 1)],
        3: [rules.Unvouched("c", rules.NOT_REPORTING, 90.0, 2)],
    }


def test_what_a_node_left_up_is_its_seen_and_inherited_calls():
    assert rules.calls_left({"active": {1: 2, 2: 1}, "unknown": {1: 3}}) == {1: 5, 2: 1}


def test_a_proxys_load_level_against_the_threshold():
    def level(cpu):
        return rules.load_level({"cpu": cpu, "delay_ms": 0.0, "window_s": 10.0}, 85)

    assert [level(c) for c in (0.0, 0.64, 0.65, 0.84, 0.85, 1.3)] == ["ok", "ok", "busy", "busy", "limit", "limit"]
    assert rules.load_level(None, 85) is None


def test_a_worker_behind_a_busy_reader_stands_where_the_reader_does():
    # --steering reader: every datagram from callers waits for the reader first
    def level(cpu, reader):
        return rules.load_level({"cpu": cpu, "delay_ms": 0.0, "window_s": 10.0, "reader_cpu": reader}, 85)

    assert level(0.3, 0.9) == "limit"
    assert level(0.3, 0.7) == "busy"
    assert level(0.9, 0.1) == "limit"
    assert level(0.3, None) == "ok"  # the reader unknown: judged on what is known
    assert rules.share_level(None, 85) is None


def test_a_heartbeats_load_is_numbers_or_nothing():
    from lbcore.contract import node_load

    good = {"cpu": 0.5, "delay_ms": 2, "window_s": 10}
    assert node_load({"load": good}) == {"cpu": 0.5, "delay_ms": 2.0, "window_s": 10.0}
    for junk in (None, "busy", [], {"cpu": 0.5}, {**good, "cpu": "x"}, {**good, "cpu": float("nan")}, {**good, "delay_ms": -1}):
        assert node_load({"load": junk}) is None, junk
    assert node_load({}) is None
    assert node_load({"load": {**good, "reader_cpu": 0.7}}) == {"cpu": 0.5, "delay_ms": 2.0, "window_s": 10.0, "reader_cpu": 0.7}
    for junk in (None, "x", True, -0.1, float("inf"), [0.5]):  # unknown, while the worker's own figure stands
        assert node_load({"load": {**good, "reader_cpu": junk}})["reader_cpu"] is None, junk
