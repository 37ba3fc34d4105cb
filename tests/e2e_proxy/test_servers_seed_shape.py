"""Issue 11's acceptance, on the seed's shape: three servers (SIPp UAS ast1..3) listed in set 1 and
set 2, a dialer on 127.0.0.1 (default set 1) and a carrier on 127.0.0.2 (a source rule sends it to set 2),
calls up in both sets. Through the real proxy, Redis and the REST API:

- each server's active_calls equals the calls its SIPp server has up (within 2), and its per-set split
  adds up to it (and, over the servers, to what each caller has up);
- maintenance on a server through the API: no new INVITE reaches it from either set; `drained` stays
  false while any call is up on it in any set (the set 1 calls end first, the set 2 calls still hold),
  and turns true within 3 s of its last BYE;
- a viewer gets 403 on the server state endpoint.

Run with -s to see the per-server figures, SIPp against the API.
"""

import time

import pytest

from dispatcher.tests.api_support import client_for
from tests.e2e_proxy.seed_shape import CARRIER, DIALER, SIPP_DUMP_S, bye_times, caller, up

pytestmark = pytest.mark.sipp

SET1_CALLS, SET2_CALLS = 30, 24
# The set 1 calls end first, so for a while the server in maintenance has calls in set 2 only.
SET1_HOLD_MS, SET2_HOLD_MS = 10_000, 16_000
STEADY_TOLERANCE = 2
DRAIN_DEADLINE_S = 3.0


def servers_by_ast(api, cluster):
    response = api.get("/api/v1/servers/")
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    by_port = {row["port"]: row for row in rows}
    return {n: by_port[port] for n, port in cluster.ports.ast.items()}


def set_calls(server, setid):
    return next(s["active_calls"] for s in server["sets"] if s["setid"] == setid)


def figures(cluster, servers):
    counts = {n: s.counts() for n, s in cluster.ast.items()}
    lines = [f"{'server':<8}{'SIPp up':>8}{'API active_calls':>18}{'set 1':>7}{'set 2':>7}{'cps':>6}  drained"]
    for n, server in servers.items():
        lines.append(
            f"{server['name']:<8}{up(counts[n]):>8}{server['active_calls']!s:>18}"
            f"{set_calls(server, 1)!s:>7}{set_calls(server, 2)!s:>7}{server['cps']!s:>6}  {server['drained']}"
        )
    return counts, "\n".join(lines)


def wait_steady(cluster, api, deadline_s=8.0):
    """Until the API's count of every server is within the tolerance of its SIPp server's, two reads running
    (SIPp dumps its counts every second, the proxy its heartbeat every second)."""
    end = time.monotonic() + deadline_s
    agreed = 0
    while True:
        servers = servers_by_ast(api, cluster)
        counts, table = figures(cluster, servers)
        close = all(
            s["active_calls"] is not None and abs(s["active_calls"] - up(counts[n])) <= STEADY_TOLERANCE
            for n, s in servers.items()
        )
        agreed = agreed + 1 if close else 0
        if agreed >= 2 or time.monotonic() >= end:
            return servers, counts, table
        time.sleep(0.3)


def test_servers_count_and_drain_across_both_sets(seed_cluster, operator, viewer):
    cluster = seed_cluster
    api, as_viewer = client_for(operator), client_for(viewer)

    dialer = caller(cluster, DIALER, calls=SET1_CALLS, rate=SET1_CALLS, hold_ms=SET1_HOLD_MS)
    carrier = caller(cluster, CARRIER, calls=SET2_CALLS, rate=SET2_CALLS, hold_ms=SET2_HOLD_MS)
    total = SET1_CALLS + SET2_CALLS
    cluster.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == total, f"{total} calls up", deadline_s=15)

    # 1. Steady state: the API's calls per server are SIPp's, and its split by set adds up.
    servers, counts, table = wait_steady(cluster, api)
    print(f"\nsteady state, {SET1_CALLS} calls from the dialer (set 1) and {SET2_CALLS} from the carrier (set 2) up:\n{table}")
    for n, server in servers.items():
        assert server["active_calls"] is not None and abs(server["active_calls"] - up(counts[n])) <= STEADY_TOLERANCE, table
        assert sorted(s["setid"] for s in server["sets"]) == [1, 2], server
        assert server["active_calls"] == set_calls(server, 1) + set_calls(server, 2), table
        assert server["drained"] is False, table
    assert sum(set_calls(s, 1) for s in servers.values()) == SET1_CALLS, table
    assert sum(set_calls(s, 2) for s in servers.values()) == SET2_CALLS, table
    # The server under test must carry calls in both sets, or the drain check below proves nothing.
    target = servers[3]
    assert set_calls(target, 1) > 0 and set_calls(target, 2) > 0, table

    # 2. A viewer may not; an operator puts ast3 into maintenance in every set at once.
    url = f"/api/v1/servers/{target['id']}/state"
    refused = as_viewer.post(url, {"state": "inactive", "reason": "viewer tries"}, format="json")
    assert refused.status_code == 403, refused.content
    assert servers_by_ast(api, cluster)[3]["admin_state"] == "active"

    invites_before = cluster.ast[3].counts().get("INVITE_Recv", 0)
    response = api.post(url, {"state": "inactive", "reason": "e2e: kernel update"}, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["admin_state"] == "inactive" and answer["drained"] is False, answer
    assert {s["setid"]: s["admin_state"] for s in answer["sets"]} == {1: "inactive", 2: "inactive"}, answer
    cluster.wait_table(int(cluster.redis.get("lb:table:version")))
    invites_before = max(invites_before, cluster.ast[3].counts().get("INVITE_Recv", 0))

    # 3. New calls from both callers: none reaches ast3, from either set.
    new_dialer = caller(cluster, DIALER, calls=40, rate=40, hold_ms=200)
    new_carrier = caller(cluster, CARRIER, calls=40, rate=40, hold_ms=200)
    for sipp in (new_dialer, new_carrier):
        sipp.wait(30)
        assert sipp.proc.returncode == 0, cluster.report(sipp)

    # 4. Drain: false while any call is up on ast3 in any set, true within 3 s of its last BYE.
    samples = []  # (wall time, drained, set 1 calls, set 2 calls)
    end = time.monotonic() + SET2_HOLD_MS / 1000 + 15
    while time.monotonic() < end:
        server = servers_by_ast(api, cluster)[3]
        samples.append((time.time(), server["drained"], set_calls(server, 1), set_calls(server, 2)))
        if server["drained"] is True:
            break
        time.sleep(0.1)
    drained_at = samples[-1][0] if samples[-1][1] is True else None
    assert drained_at is not None, f"ast3 never drained: last samples {samples[-5:]}"
    # Its calls in set 1 ended while set 2's held: that stretch must have read "not drained".
    set2_only = [x for x in samples if x[2] == 0 and x[3]]
    assert set2_only and all(x[1] is False for x in set2_only), samples
    time.sleep(SIPP_DUMP_S)  # SIPp's log of the last BYE is written by now
    byes = bye_times(cluster.ast[3])
    assert len(byes) == cluster.ast[3].counts().get("ACK_Recv", 0) and up(cluster.ast[3].counts()) == 0, byes
    last_bye = byes[-1]
    # The proxy counts a call ended when it relays the BYE, a moment before SIPp logs it: 50 ms of slack.
    early = [x for x in samples if x[1] is not False and x[0] < last_bye - 0.05]
    assert not early, f"drained read {early[0][1]} before ast3's last BYE at {last_bye:.3f}: {early[:3]}"
    drain_s = drained_at - last_bye
    print(f"ast3: its set 1 calls ended while set 2's held: {len(set2_only)} reads, all drained=false")
    print(f"ast3: last BYE at SIPp, then drained=true in the API {drain_s:.2f} s later (limit {DRAIN_DEADLINE_S} s)")
    assert drain_s <= DRAIN_DEADLINE_S, samples[-10:]

    for sipp in (dialer, carrier):
        sipp.wait(30)
        assert sipp.proc.returncode == 0, cluster.report(sipp)
    # Every call has ended, and the last new one was set up more than 10 s ago: the current rate reads 0.
    servers, counts, table = wait_steady(cluster, api, deadline_s=3)
    print(f"every call ended:\n{table}")
    assert all(s["active_calls"] == 0 and s["cps"] == 0 for s in servers.values()), table
    # safe to restart: ast3, in maintenance everywhere; the others still take new calls at 0 (lbcore.rules.drained)
    assert {n: s["drained"] for n, s in servers.items()} == {1: False, 2: False, 3: True}, table
    final = cluster.stop_all_uas()
    assert final[3]["INVITE_Recv"] == invites_before, f"ast3 got new calls in maintenance: {final}"
    assert final[3]["BYE_Recv"] == final[3]["INVITE_Recv"], f"ast3's calls must end through the proxy: {final}"
    assert final[1]["INVITE_Recv"] + final[2]["INVITE_Recv"] + final[3]["INVITE_Recv"] == total + 80, final
