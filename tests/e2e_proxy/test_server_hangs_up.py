"""Agents hang up: the server's BYE must reach the caller over the transport the caller used, and
the call must end where it was counted.

Under --processes a TCP caller's call lives in worker 0 (it holds the connection and counted the
INVITE), while the server's BYE reaches the worker its Call-ID hashes to. That worker used to
relay it on a new connection of its own (a caller behind NAT takes none) and close a call it
never counted, so worker 0 showed the call up until dialog_timeout. It hands it to worker 0 now.
"""

import json
import time

import pytest

pytestmark = [pytest.mark.sipp]

CALLS = 20
HANGS_UP = {n: "uas_hangs_up.xml" for n in (1, 2, 3)}


def _active(redis, node_name, processes):
    names = [node_name] + [f"{node_name}-{i}" for i in range(1, processes)]
    nodes = [json.loads(redis.get(f"lb:node:{name}") or "{}") for name in names]
    return [n.get("totals", {}).get("active") for n in nodes], [n.get("totals", {}).get("invites") for n in nodes]


def wait_for_totals(cluster, node_name, processes, calls, within=10.0):
    """(active, invites) per worker once every worker's heartbeat (once a second) shows `calls`
    INVITEs in all and none up, or as they last read after `within` seconds."""
    end = time.monotonic() + within
    while True:
        active, invites = _active(cluster.redis, node_name, processes)
        if (None not in invites and sum(invites) == calls and active == [0] * processes) or time.monotonic() > end:
            return active, invites
        time.sleep(0.2)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("processes", [1, 2])
def test_a_bye_from_the_server_reaches_the_caller_and_ends_the_call(cluster_factory, transport, processes):
    cluster = cluster_factory(scenarios=HANGS_UP, start_proxy=False)
    if processes > 1:
        cluster.proxy_extra = ("--processes", str(processes))
    cluster.start_proxy()
    uac = cluster.run_uac("uac_recv_bye.xml", calls=CALLS, rate=20, transport=transport, timeout=40)
    assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
    active, invites = wait_for_totals(cluster, cluster.proxy.node_name, processes, CALLS)
    assert sum(invites) == CALLS and active == [0] * processes, (active, invites, cluster.report(uac))
