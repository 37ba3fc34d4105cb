"""Agents hang up: the server's BYE must reach the caller, over the transport the caller used."""

import pytest

pytestmark = [pytest.mark.sipp]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("processes", [1, 2])
def test_a_bye_from_the_server_reaches_the_caller(cluster_factory, transport, processes):
    cluster = cluster_factory(scenarios={1: "uas_hangs_up.xml", 2: "uas_hangs_up.xml", 3: "uas_hangs_up.xml"}, start_proxy=False)
    if processes > 1:
        cluster.proxy_extra = ("--processes", str(processes))
    cluster.start_proxy()
    calls = 20
    uac = cluster.run_uac("uac_recv_bye.xml", calls=calls, rate=20, transport=transport, timeout=40)
    assert int(uac.stats()["SuccessfulCall(C)"]) == calls, cluster.report(uac)
