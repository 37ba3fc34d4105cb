"""SIP over TLS through the real runproxy: a SIPp caller on UDP, servers on TLS (Python's ssl in a
thread: Debian's SIPp is built without TLS), certificates made by the test. Every call completes,
BYE included, over one TLS connection per server."""

import asyncio
import threading

import pytest

from proxy.tests.tls_support import Pki, TlsUas
from tests.e2e_proxy.conftest import PRIORITIES, WEIGHTS, Cluster
from tests.e2e_proxy.proxyctl import ProxyProcess
from tests.e2e_proxy.test_server_hangs_up import wait_for_totals

pytestmark = pytest.mark.sipp

CALLS = 60


class TlsServers:
    """Three TlsUas on their own event loop in a thread, so SIPp and runproxy run meanwhile."""

    def __init__(self, pki, ports):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tls-uas", daemon=True)
        self.thread.start()
        self.uas = {n: self._call(TlsUas(p, pki.server_context(), None).start()) for n, p in ports.items()}

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def counts(self):
        async def read():
            return {n: (u.connections, u.requests.qsize()) for n, u in self.uas.items()}

        return self._call(read())

    def close(self):
        async def stop():
            for u in self.uas.values():
                u.close()

        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class TlsCluster(Cluster):
    def table_text(self):
        lines = ["# setid destination flags priority attrs"]
        for n in (1, 2, 3):
            lines.append(f"1 sip:127.0.0.1:{self.ports.ast[n]};transport=tls 0 {PRIORITIES[n]} weight={WEIGHTS[n]};duid=ast{n}")
        return "\n".join(lines) + "\n"


@pytest.mark.parametrize("processes", [1, 2])
def test_sipp_calls_on_udp_reach_tls_servers_and_hang_up(transactional_db, redis, redis_url, tmp_path, ports, processes):
    pki = Pki(tmp_path)
    servers = TlsServers(pki, ports.ast)
    cluster = TlsCluster(tmp_path, redis, redis_url, ports)
    try:
        # the proxy's start-up pause (gc.freeze) can pass 200 ms on a loaded host and shed the first
        # INVITE; this test is about TLS, not overload
        cluster.publish(overload_lag_ms=2000)
        tls_port = ports.base + 5  # TCP and TLS cannot share the proxy's port
        extra = ["--listen", f"tls:127.0.0.1:{tls_port}", "--tls-cert", str(pki.proxy[0]), "--tls-key", str(pki.proxy[1])]
        extra += ["--tls-ca", str(pki.ca)]
        if processes > 1:
            # TLS is worker 0's (a second worker could not bind it): the calls to TLS servers live
            # there, whichever worker their Call-IDs hash to
            extra += ["--processes", str(processes)]
        cluster.proxy = ProxyProcess(port=ports.proxy, redis_url=redis_url, node_name="e2e-tls", logdir=tmp_path, extra=extra)
        cluster._procs.append(cluster.proxy)
        cluster.proxy.start()
        cluster.proxy.wait_table(redis, cluster.version)
        uac = cluster.run_uac(calls=CALLS, rate=50, hold_ms=100)
        assert uac.proc.returncode == 0, cluster.report(uac)
        assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
        counts = servers.counts()
        # INVITE, ACK and BYE of every call reached a server over TLS
        assert sum(n for _, n in counts.values()) == 3 * CALLS, counts
        assert all(conns == 1 and n > 0 for conns, n in counts.values()), counts  # each server: its calls on one connection
        assert "failover" not in cluster.proxy.tail(20000), cluster.proxy.tail(2500)
        active, invites = wait_for_totals(cluster, "e2e-tls", processes, CALLS)
        assert sum(invites) == CALLS and active == [0] * processes, (active, invites)
        if processes > 1:
            assert invites[1:] == [0] * (processes - 1), invites  # all in worker 0
    finally:
        cluster.close()
        servers.close()
