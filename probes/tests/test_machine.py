"""The state machine alone, without sockets: every edge of Kamailio's thresholds."""

import pytest

from dispatcher.validators import parse_reply_codes
from lbcore.contract import Health
from probes.machine import Thresholds, is_good, next_streak, step
from probes.prober import Outcome

OK = Outcome(1, 200, "200 OK", 1.5, 0.0)
NOT_FOUND = Outcome(1, 404, "404 Not Found", 1.0, 0.0)
TIMEOUT = Outcome(1, None, "timeout", None, 0.0)
T = Thresholds(probing=3, inactive=2, reply_codes=parse_reply_codes(""))


def run(state, outcomes, thresholds=T, streak=0):
    health = Health(state=state, since=0.0)
    changes = []
    for outcome in outcomes:
        streak = next_streak(streak, is_good(outcome, thresholds.reply_codes))
        s = step(health, outcome, streak, thresholds, now=100.0)
        health = s.health
        if s.changed:
            changes.append((s.health.state, s.reason))
    return health, changes


def test_unknown_is_up_at_the_first_good_reply():
    assert run("unknown", [OK])[1] == [("up", "200 OK")]


def test_up_goes_down_after_threshold_failures_in_a_row():
    health, changes = run("up", [TIMEOUT, TIMEOUT, TIMEOUT])
    assert changes == [("down", "timeout after 3 probes")]
    assert (health.fails, health.since, health.code, health.reason) == (3, 100.0, None, "timeout")


def test_a_good_reply_restarts_the_failure_count():
    assert run("up", [TIMEOUT, TIMEOUT, OK, TIMEOUT, TIMEOUT])[1] == []


def test_down_needs_inactive_threshold_good_replies():
    assert run("down", [OK])[1] == []
    assert run("down", [OK, OK])[1] == [("up", "200 OK after 2 probes")]
    assert run("down", [OK, TIMEOUT, OK])[1] == []


def test_a_suspect_is_settled_by_one_probe():
    assert run("suspect", [TIMEOUT])[1] == [("down", "timeout (suspect)")]
    assert run("suspect", [OK])[1] == [("up", "200 OK (suspect)")]


def test_class_4_makes_a_404_good_but_never_a_timeout():
    class4 = Thresholds(probing=1, inactive=1, reply_codes=parse_reply_codes("class=4"))
    assert run("up", [NOT_FOUND] * 5, class4)[1] == []
    assert run("up", [TIMEOUT], class4)[1] == [("down", "timeout")]


@pytest.mark.parametrize(
    "streak, good, expected", [(0, True, 1), (3, True, 4), (-2, True, 1), (0, False, -1), (2, False, -1), (-2, False, -3)]
)
def test_the_streak_counts_runs(streak, good, expected):
    assert next_streak(streak, good) == expected
