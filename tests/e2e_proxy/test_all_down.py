"""With no usable destination (down by probes, gone, or all in maintenance) the caller gets 503."""

import pytest

from lbcore import contract

pytestmark = pytest.mark.sipp

CALLS = 20


def test_it_answers_503_when_every_server_is_down(cluster_factory):
    from dispatcher.services import change_health

    # Health events carry no version a test could wait on, so mark them down before the proxy
    # starts: it must take lb:health into account from its first call.
    cluster = cluster_factory(start_proxy=False)
    for dest in cluster.dests.values():
        change_health(dest, contract.Health(state=contract.DOWN, fails=3, reason="e2e: probes failed"))
    cluster.start_proxy()
    uac = cluster.run_uac("uac_503.xml", calls=CALLS, rate=50)
    assert uac.proc.returncode == 0, cluster.report(uac)
    assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
    counts = cluster.stop_all_uas()
    assert all(c.get("INVITE_Recv", 0) == 0 for c in counts.values()), counts


def test_it_answers_503_when_every_server_is_gone(cluster):
    for sipp in cluster.ast.values():
        sipp.kill()
    uac = cluster.run_uac("uac_503.xml", calls=CALLS, rate=50, timeout=60)
    assert uac.proc.returncode == 0, cluster.report(uac)
    assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)


def test_it_answers_503_when_every_server_is_in_maintenance(cluster):
    from dispatcher.services import set_state

    for dest in cluster.dests.values():
        set_state(dest, "inactive", reason="e2e: all in maintenance")
    cluster.wait_table(int(cluster.redis.get("lb:table:version")))
    uac = cluster.run_uac("uac_503.xml", calls=CALLS, rate=50)
    assert uac.proc.returncode == 0, cluster.report(uac)
    counts = cluster.stop_all_uas()
    assert all(c.get("INVITE_Recv", 0) == 0 for c in counts.values()), counts
