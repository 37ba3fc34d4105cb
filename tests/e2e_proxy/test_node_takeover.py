"""Issue 12's black-box run: two proxies on one Redis, node A killed under calls, node B on A's address.

Calls with a 10 s hold go up through node A (127.0.0.1:P). A is SIGKILLed and node B (another node
name) starts on the same address, as a floating address moves to the backup. Every call that was up
completes its BYE through B, which closes the records A left in Redis and takes the rest over once
A's heartbeat has expired; the servers API's active calls track what the SIPp servers have up
(within 10%) before, during and after, and read 0 once the calls ended; new calls route through B.
Prints the figures (pytest -s): calls lost, seconds without service.
"""

import json
import socket
import time
import uuid

import pytest

from dispatcher.tests.api_support import client_for
from lbcore.contract import NODE_TTL_SECONDS
from tests.e2e_proxy.seed_shape import SIPP_DUMP_S, up

pytestmark = pytest.mark.sipp

CALLS = 120
HOLD_MS = 10_000
TOLERANCE = 0.10


def _api_calls(api):
    servers = api.get("/api/v1/servers/").json()["results"]
    counts = [s["active_calls"] for s in servers]
    return None if any(n is None for n in counts) else sum(counts)


def _uas_up(cluster):
    return sum(up(s.counts()) for s in cluster.ast.values())


def _tracks(api, cluster, what, samples):
    """The API's active calls now within 10% of the SIPp servers' calls up (at their next dump)."""
    api_n = _api_calls(api)
    time.sleep(SIPP_DUMP_S)
    sipp = _uas_up(cluster)
    samples.append((what, sipp, api_n))
    assert api_n is not None and abs(api_n - sipp) <= max(1, TOLERANCE * sipp), samples
    return sipp


def _options_answered(port, timeout=0.2):
    """Does something answer SIP on 127.0.0.1:port (the proxy answers OPTIONS to itself)?"""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        lport = sock.getsockname()[1]
        msg = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        sock.sendto(msg.encode(), ("127.0.0.1", port))
        try:
            return sock.recv(65535).startswith(b"SIP/2.0 200")
        except OSError:
            return False


def _workers_total(redis, node_name, processes, key):
    """A node's heartbeat total summed over its workers (<name>, <name>-1, ...)."""
    names = [node_name] + [f"{node_name}-{i}" for i in range(1, processes)]
    nodes = [json.loads(redis.get(f"lb:node:{n}") or "{}") for n in names]
    return sum(n.get("totals", {}).get(key, 0) for n in nodes)


def _wait_workers_total(redis, node_name, processes, key, want, within=10.0):
    end = time.monotonic() + within
    while (got := _workers_total(redis, node_name, processes, key)) != want and time.monotonic() < end:
        time.sleep(0.1)
    return got


@pytest.mark.parametrize("b_processes", [1, 2])
def test_a_killed_nodes_calls_end_through_the_node_that_took_its_address(cluster_factory, viewer, b_processes):
    """With B as `--processes 2`, one of its workers takes A's records over and the BYEs reach
    both by their Call-IDs: the one that relays a BYE closes the record in its sibling's hash."""
    cluster = cluster_factory(start_proxy=False)
    a = cluster.start_proxy("e2e-a")
    api = client_for(viewer)
    samples = []

    uac = cluster.uac(calls=CALLS, rate=120, hold_ms=HOLD_MS)
    cluster.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == CALLS, f"{CALLS} calls up")
    up_before = _tracks(api, cluster, "before the kill (A up)", samples)
    assert up_before == CALLS

    a.kill()  # SIGKILL: no last flush, no goodbye
    killed_at = time.monotonic()
    assert not _options_answered(cluster.ports.proxy)
    _tracks(api, cluster, "A dead, nobody on the address", samples)
    if b_processes > 1:
        cluster.proxy_extra = ("--processes", str(b_processes))
    cluster.start_proxy("e2e-b")  # the address moves to B
    while not _options_answered(cluster.ports.proxy):
        pass
    no_service_s = time.monotonic() - killed_at
    _tracks(api, cluster, "B on the address, A's heartbeat not yet expired", samples)
    # once A's heartbeat has expired B takes A's records over: still the same count, never twice
    deadline = time.monotonic() + NODE_TTL_SECONDS + 3
    while cluster.redis.exists("lb:dialogcounts:e2e-a") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not cluster.redis.exists("lb:dialogcounts:e2e-a"), "B never took A's records over"
    _tracks(api, cluster, "B took A's records over", samples)

    uac.wait(HOLD_MS / 1000 + 30)
    stats = uac.stats()
    lost = CALLS - int(stats.get("SuccessfulCall(C)", 0))
    assert uac.proc.returncode == 0 and lost == 0, cluster.report(uac)
    deadline = time.monotonic() + 5
    while _api_calls(api) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _tracks(api, cluster, "every call ended", samples) == 0 and _api_calls(api) == 0, samples
    counts = {n: s.counts() for n, s in cluster.ast.items()}
    assert sum(c.get("BYE_Recv", 0) for c in counts.values()) == CALLS, counts
    adopted = _wait_workers_total(cluster.redis, "e2e-b", b_processes, "adopted", CALLS)
    assert adopted == CALLS, adopted
    # and B's own heartbeats let go of them too (the worker that took a record over, whichever
    # worker its BYE reached)
    still = _wait_workers_total(cluster.redis, "e2e-b", b_processes, "active", 0)
    assert still == 0, f"B's heartbeats still count {still} calls"

    # new calls route through B
    new = cluster.run_uac(calls=30, rate=30, hold_ms=100, timeout=30)
    assert new.proc.returncode == 0 and int(new.stats().get("SuccessfulCall(C)", 0)) == 30, cluster.report(new)
    answered = _wait_workers_total(cluster.redis, "e2e-b", b_processes, "answered", 30)
    assert answered == 30, answered

    print("\nnode takeover (A SIGKILLed with calls up, B started on A's address):")
    print(f"  calls up at the kill: {up_before}; calls lost: {lost}; new calls through B: {answered}/30")
    print(f"  seconds without service (kill -> B answers on the address): {no_service_s:.2f}")
    print(f"  calls B adopted (closed in A's records or taken over): {adopted}")
    for what, sipp, api_n in samples:
        print(f"  {what:<50} SIPp up {sipp:>4}   API active_calls {api_n}")


def test_byes_that_come_before_the_takeover_close_the_dead_nodes_records(cluster_factory, viewer):
    """Calls that hang up while A's heartbeat has not yet expired: B relays each BYE at once and closes
    the record where it is (A's hash), so the count goes down with the servers' and never lingers."""
    cluster = cluster_factory(start_proxy=False)
    a = cluster.start_proxy("e2e-a")
    api = client_for(viewer)
    samples = []
    calls = 60
    uac = cluster.uac(calls=calls, rate=120, hold_ms=2500)
    cluster.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == calls, f"{calls} calls up")
    a.kill()
    b = cluster.start_proxy("e2e-b")
    assert cluster.redis.exists("lb:node:e2e-a"), "A's heartbeat expired before the BYEs: nothing tested"
    uac.wait(30)
    assert uac.proc.returncode == 0 and int(uac.stats().get("SuccessfulCall(C)", 0)) == calls, cluster.report(uac)
    assert cluster.redis.exists("lb:node:e2e-a"), "A's heartbeat expired before the BYEs ended: nothing tested"
    deadline = time.monotonic() + 3
    while _api_calls(api) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _tracks(api, cluster, "every call ended, A's heartbeat still there", samples) == 0
    assert _api_calls(api) == 0, samples
    b.wait_node(cluster.redis, lambda n: n["totals"].get("adopted", 0) == calls, f"{calls} records closed in A's hash")
