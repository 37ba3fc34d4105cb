"""Calls set up and torn down through the proxy: the BYE follows the Record-Route back through it."""

import pytest

pytestmark = pytest.mark.sipp

CALLS = 60


def _assert_all_completed(cluster, uac, calls=CALLS):
    assert uac.proc.returncode == 0, cluster.report(uac)
    stats = uac.stats()
    assert int(stats["SuccessfulCall(C)"]) == calls, cluster.report(uac)
    counts = cluster.stop_all_uas()
    assert sum(c.get("INVITE_Recv", 0) for c in counts.values()) == calls, counts
    # Each BYE arrived at the server that took the call, through the proxy (the UAC only knows the proxy).
    for n, c in counts.items():
        assert c.get("BYE_Recv", 0) == c.get("INVITE_Recv", 0), f"ast{n}: {c}"


def test_it_relays_calls_over_udp(cluster):
    uac = cluster.run_uac(calls=CALLS, rate=100, hold_ms=100)
    _assert_all_completed(cluster, uac)


def test_it_relays_calls_from_a_tcp_client(cluster):
    uac = cluster.run_uac(calls=CALLS, rate=100, hold_ms=100, transport="tcp")
    _assert_all_completed(cluster, uac)


def test_it_reaches_servers_over_tcp(cluster_factory):
    cluster = cluster_factory(transports={1: "tcp", 2: "tcp", 3: "tcp"})
    uac = cluster.run_uac(calls=CALLS, rate=100, hold_ms=100)
    _assert_all_completed(cluster, uac)


def test_it_answers_options_to_itself(cluster):
    from tests.e2e_proxy.sippctl import wait_udp_sip

    wait_udp_sip(cluster.ports.proxy, deadline_s=2.0)
