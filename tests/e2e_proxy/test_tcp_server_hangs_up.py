"""A server on TCP hangs up, under --processes: the BYE must reach the caller and end the call where
it was counted.

A UDP caller's call hashes to any worker; its INVITE left for the TCP server on that worker's own
connection. The server's BYE goes to the proxy's public TCP address on a connection of its own
(tcp_asterisk.py: pjsip does this), which only worker 0 accepts. Worker 0 used to relay it and close
a call it never counted, while the worker that counted it showed the call up until dialog_timeout:
"drained — safe to restart" never came for that server. A call with a TCP leg now lives in worker 0.
"""

import pytest

from tests.e2e_proxy.conftest import Cluster
from tests.e2e_proxy.tcp_asterisk import TcpAsterisk
from tests.e2e_proxy.test_server_hangs_up import wait_for_totals

pytestmark = [pytest.mark.sipp]

CALLS = 20


@pytest.mark.parametrize(("processes", "steering"), [(1, None), (2, "bpf"), (2, "reader")])
def test_a_tcp_servers_bye_on_its_own_connection_ends_the_call_where_it_was_counted(
    transactional_db, redis, redis_url, tmp_path, ports, processes, steering
):
    cluster = Cluster(tmp_path, redis, redis_url, ports)
    servers = {n: TcpAsterisk(ports.ast[n]).start() for n in (1, 2, 3)}
    try:
        cluster.uas_transport = {n: "tcp" for n in servers}
        cluster.publish()
        if processes > 1:
            cluster.proxy_extra = ("--processes", str(processes), "--steering", steering)
        cluster.start_proxy()
        uac = cluster.run_uac("uac_recv_bye.xml", calls=CALLS, rate=20, timeout=40)
        assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
        assert sum(s.byes_ok for s in servers.values()) == CALLS, [(s.byes_ok, s.errors) for s in servers.values()]
        active, invites = wait_for_totals(cluster, cluster.proxy.node_name, processes, CALLS)
        assert sum(invites) == CALLS and active == [0] * processes, (active, invites, cluster.report(uac))
    finally:
        cluster.close()
        for s in servers.values():
            s.stop()
