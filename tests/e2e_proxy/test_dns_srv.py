"""A destination by host name through `manage.py runproxy`, SIPp servers and a real dnsmasq (issue 14).

SRV records send ast.test's calls to ast1 and ast2 by weight (75/25), never to the next priority;
the record then moves to ast3 and the running proxy follows within a few TTLs; then the name stops
resolving (NXDOMAIN): calls go on to ast3, and the server's row and the API say since when and why.
The proxy asks only the test's dnsmasq (SIP_DNS_SERVERS), never the system's name servers.
"""

import time

import pytest

from tests.dnsmasq import Dnsmasq, host, srv

pytestmark = pytest.mark.sipp

CALLS = 200


def srv_to(ports, *targets):
    """SRV records for _sip._udp.ast.test: (ast number, priority, weight) each, and their addresses."""
    records = []
    for n, priority, weight in targets:
        records.append(srv("_sip._udp.ast.test", f"ast{n}.ast.test", ports.ast[n], priority, weight))
        records.append(host(f"ast{n}.ast.test", "127.0.0.1"))
    return records


def invites(cluster):
    return {n: s.counts().get("INVITE_Recv", 0) for n, s in cluster.ast.items()}


def test_a_destination_by_name_follows_its_srv_records(cluster_factory, ports, redis, client, operator):
    from dispatcher.models import Destination
    from dispatcher.services import import_dispatcher_list

    dns = Dnsmasq(srv_to(ports, (1, 10, 75), (2, 10, 25), (3, 20, 100)), port=ports.uac(), ttl=1)
    try:
        cluster = cluster_factory(start_proxy=False)
        import_dispatcher_list("1 sip:ast.test 0 0 duid=ast9\n", replace=True)
        dest = Destination.objects.get(uri="sip:ast.test")
        cluster.version = int(redis.get("lb:table:version"))
        cluster.proxy_env = {"SIP_DNS_SERVERS": dns.servers, "SIP_DNS_MIN_TTL": "1"}
        cluster.start_proxy()

        uac = cluster.run_uac(calls=CALLS, rate=100, hold_ms=20)
        assert uac.proc.returncode == 0, cluster.report(uac)
        got = cluster.wait_uas(lambda c: sum(x.get("INVITE_Recv", 0) for x in c.values()) >= CALLS, f"{CALLS} INVITEs")
        got = {n: c.get("INVITE_Recv", 0) for n, c in got.items()}
        assert got[3] == 0, f"the next SRV priority took calls while the best answered: {got}"
        assert 0.6 < got[1] / CALLS < 0.9, f"SRV weights 75/25 gave {got}"

        # The record moves to ast3: the running proxy follows, no new table, no restart.
        dns.restart(srv_to(ports, (3, 10, 10)))
        deadline = time.monotonic() + 20
        while invites(cluster)[3] == 0:  # bounded: a call a second until one reaches ast3
            assert time.monotonic() < deadline, f"no call reached ast3 after the SRV change: {cluster.proxy.tail(1500)}"
            cluster.run_uac(calls=1, rate=1, hold_ms=20)
            time.sleep(0.5)
        before = invites(cluster)
        assert cluster.run_uac(calls=10, rate=50, hold_ms=20).proc.returncode == 0
        after = cluster.wait_uas(lambda c: c[3].get("INVITE_Recv", 0) >= before[3] + 10, "10 more INVITEs at ast3")
        assert [after[n].get("INVITE_Recv", 0) for n in (1, 2)] == [before[1], before[2]], "calls still reached the old targets"

        # The name stops resolving: its last address stays in use, and the panel says so.
        dns.restart([host("other.test", "127.0.0.9")])
        deadline = time.monotonic() + 20
        while redis.hget("lb:dnsfail:e2e", str(dest.id)) is None:
            assert time.monotonic() < deadline, f"no lb:dnsfail warning: {cluster.proxy.tail(1500)}"
            time.sleep(0.1)
        before = invites(cluster)[3]
        assert cluster.run_uac(calls=5, rate=50, hold_ms=20).proc.returncode == 0
        cluster.wait_uas(lambda c: c[3].get("INVITE_Recv", 0) >= before + 5, "5 more INVITEs at ast3 by its last address")

        client.force_login(operator)
        page = client.get("/").content.decode()
        assert "DNS: sip:ast.test stopped resolving at" in page
        assert f"(NXDOMAIN); using last known 127.0.0.1:{ports.ast[3]}" in page
        body = client.get(f"/api/v1/servers/{dest.server_id}/", HTTP_ACCEPT="application/json").json()
        assert body["dns_warning"].endswith(f"(NXDOMAIN); using last known 127.0.0.1:{ports.ast[3]}")

        # Back in DNS: the next heartbeat rewrites the proxy's failures without it.
        dns.restart(srv_to(ports, (3, 10, 10)))
        deadline = time.monotonic() + 20
        while redis.hget("lb:dnsfail:e2e", str(dest.id)) is not None:
            assert time.monotonic() < deadline, "the warning outlived the name's return"
            time.sleep(0.1)
        assert "stopped resolving" not in client.get("/").content.decode()
    finally:
        dns.stop()
