"""The server rules: what one box is, its name, state, health, calls and whether it is safe to restart."""

import pytest

from lbcore import rules
from lbcore.contract import ACTIVE, DISABLED, INACTIVE, Health
from sip.errors import SipSyntaxError


def test_it_keys_a_server_by_transport_host_and_port():
    assert rules.server_endpoint("sip:10.0.0.11:5080") == ("udp", "10.0.0.11", 5080)
    assert rules.server_endpoint("sip:ast1@AST1.Example.com") == ("udp", "ast1.example.com", 5060)
    assert rules.server_endpoint("sip:10.0.0.11:5080;transport=TCP") == ("tcp", "10.0.0.11", 5080)
    assert rules.server_endpoint("sips:10.0.0.11") == ("tls", "10.0.0.11", 5061)
    assert rules.server_endpoint("sip:[2001:db8::1]:5080") == ("udp", "2001:db8::1", 5080)
    with pytest.raises(SipSyntaxError):
        rules.server_endpoint("http://10.0.0.11")


def test_it_names_a_server_by_the_duid_its_rows_agree_on():
    assert rules.server_name(["ast1", "ast1"], "10.0.0.11", 5080) == "ast1"
    assert rules.server_name(["ast1", "box"], "10.0.0.11", 5080) == "10.0.0.11:5080"
    assert rules.server_name(["ast1", ""], "10.0.0.11", 5080) == "10.0.0.11:5080"
    assert rules.server_name([], "2001:db8::1", 5080) == "[2001:db8::1]:5080"


def test_a_name_another_server_has_goes_to_the_next_choice():
    choices = rules.server_name_choices(["ast1"], "tcp", "10.0.0.11", 5080)
    assert [next(choices) for _ in range(5)] == [
        "ast1",
        "10.0.0.11:5080",
        "tcp:10.0.0.11:5080",
        "tcp:10.0.0.11:5080 (2)",
        "tcp:10.0.0.11:5080 (3)",
    ]
    udp = (1, "", ["ast1"], "udp", "10.0.0.11", 5080)
    tcp = (2, "", ["ast1"], "tcp", "10.0.0.11", 5080)
    # One DUID on two endpoints, one host:port over two transports: never one name twice.
    assert rules.derive_server_names([udp, tcp], set()) == {1: "ast1", 2: "10.0.0.11:5080"}
    assert rules.derive_server_names([udp, tcp], {"ast1"}) == {1: "10.0.0.11:5080", 2: "tcp:10.0.0.11:5080"}
    # Case is ignored: the taken names are keys (server_name_key).
    assert rules.derive_server_names([udp], {rules.server_name_key("AST1")}) == {1: "10.0.0.11:5080"}
    taken = {"ast1", "10.0.0.11:5080", "udp:10.0.0.11:5080", "udp:10.0.0.11:5080 (2)"}
    assert rules.derive_server_names([udp], taken) == {1: "udp:10.0.0.11:5080 (3)"}


def test_derived_names_stay_where_they_are():
    # The tcp server holds host:port (the udp one was made later, or held ast1 then): neither moves.
    udp = (1, "tcp:10.0.0.11:5080", ["ast1"], "udp", "10.0.0.11", 5080)
    tcp = (2, "10.0.0.11:5080", ["ast1"], "tcp", "10.0.0.11", 5080)
    assert rules.derive_server_names([udp, tcp], {"ast1"}) == {1: "udp:10.0.0.11:5080", 2: "10.0.0.11:5080"}
    udp = (1, "udp:10.0.0.11:5080", ["ast1"], "udp", "10.0.0.11", 5080)
    assert rules.derive_server_names([udp, tcp], {"ast1"}) == {1: "udp:10.0.0.11:5080", 2: "10.0.0.11:5080"}
    # A better name set free is taken: here the DUID, once no other server has it.
    assert rules.derive_server_names([udp, tcp], set()) == {1: "ast1", 2: "10.0.0.11:5080"}
    # Names that clash (a database from before they were unique): the first keeps it.
    a, b = (1, "ast1", ["ast1"], "udp", "10.0.0.11", 5080), (2, "ast1", ["ast1"], "udp", "10.0.0.12", 5080)
    assert rules.derive_server_names([a, b], set()) == {1: "ast1", 2: "10.0.0.12:5080"}
    # Two rows swap DUIDs: each takes the other's name.
    a, b = (1, "ast2", ["ast1"], "udp", "10.0.0.11", 5080), (2, "ast1", ["ast2"], "udp", "10.0.0.12", 5080)
    assert rules.derive_server_names([a, b], set()) == {1: "ast1", 2: "ast2"}


def test_its_admin_state_is_its_rows_or_mixed():
    assert rules.server_admin_state(["inactive", "inactive"]) == "inactive"
    assert rules.server_admin_state(["inactive", "active"]) == rules.MIXED
    assert rules.server_admin_state([]) == "inactive"


def test_its_health_is_the_worst_of_its_rows():
    assert rules.worst_health(["up", "down", "suspect"]) == "down"
    assert rules.worst_health(["up", "suspect"]) == "suspect"
    assert rules.worst_health(["up", "unknown"]) == "unknown"
    assert rules.worst_health(["up", "up"]) == "up"
    assert rules.worst_health([]) == "unknown"


def test_a_disabled_destinations_health_is_unknown_with_why():
    """Nothing probes it nor sends it a call: its last "down" is from before it was disabled."""
    down = Health(state="down", rtt_ms=None, fails=3, reason="3 probes unanswered")
    known = rules.known_health("disabled", down)
    assert (known.state, known.reason, known.rtt_ms, known.fails) == ("unknown", "not probed — disabled", None, 0)
    assert rules.known_health("inactive", down) is down and rules.known_health("active", down) is down
    assert rules.unmeasured("disabled") == "not probed — disabled" and rules.unmeasured("inactive") == ""


def test_the_server_health_comes_from_the_rows_something_probes():
    up, down = Health(state="up", rtt_ms=3.0), Health(state="down")
    disabled = rules.known_health("disabled", down)
    assert rules.server_health([("active", up), ("active", down)]) == 1
    assert rules.server_health([("disabled", disabled), ("active", up)]) == 1  # disabled in set 1 only: up
    assert rules.server_health([("disabled", disabled), ("disabled", disabled)]) == 0  # unknown, with why
    assert rules.server_health([("active", Health(state="up")), ("inactive", up)]) == 1  # as bad, with a probe time
    assert rules.server_health([]) is None


def test_its_calls_are_the_sum_or_unknown():
    assert rules.server_calls([12, 0, 3]) == 15
    assert rules.server_calls([12, None]) is None
    assert rules.server_calls([]) == 0


def _off(*calls):
    """Rows in maintenance (or disabled) with these counts."""
    return [(INACTIVE if i % 2 == 0 else DISABLED, n) for i, n in enumerate(calls)]


def test_it_is_drained_only_when_every_set_is_at_zero():
    # The bug this rule exists for: set 1's row at 0 while set 2 still carries 12 calls.
    assert rules.drained(_off(0, 12)) is False
    assert rules.drained(_off(0, 0)) is True
    assert rules.drained([]) is True


def test_a_server_a_set_still_sends_calls_to_is_not_drained_at_zero():
    # Maintenance in set 1 only, no call up anywhere this second: the next call through set 2
    # lands on the box, so a restart now drops it. Not "safe to restart".
    assert rules.drained([(INACTIVE, 0), (ACTIVE, 0)]) is False
    assert rules.drained([(ACTIVE, 0)]) is False
    assert rules.drained([(INACTIVE, 0), (ACTIVE, None)]) is False  # known: it takes calls


def test_an_unknown_count_is_never_drained():
    # A proxy that carried its calls stopped reporting, or restarted with calls up: unknown, not "safe".
    assert rules.drained(_off(0, None)) is None
    assert rules.drained(_off(None)) is None
    # ... but calls known to be up are reason enough to say "not drained".
    assert rules.drained(_off(3, None)) is False


def test_nobody_vouches_for_a_zero_while_no_proxy_reports():
    assert rules.drained(_off(0, 0), reporting=False) is None
    assert rules.drained(_off(2, 0), reporting=False) is False


def test_the_drain_rule_reads_unvouched_calls_as_unknown():
    # Proxy lb2 stopped reporting with 4 calls on destination 7 (set 2's row of the server).
    records = [{"name": "lb2", "written": 100.0, "active": {7: 4}, "unknown": {}}]
    unvouched = rules.unvouched_calls([{"name": "lb1"}], records)
    live_counts = {6: 0, 7: 0}  # what the live proxy lb1 counts
    counts = [None if d in unvouched else live_counts[d] for d in (6, 7)]
    assert rules.drained(_off(*counts)) is None
