"""runproxy --processes 2: one address, two proxy processes, every call kept whole in one of them.

What a transaction needs must stay in the process that holds it: retransmissions absorbed, CANCEL
matched to its INVITE, responses back to the process that sent the request, failover, and each
worker's counters (one node each) adding up to the calls made.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e_proxy.rawsip import UdpPeer, hang_up, request
from tests.e2e_proxy.sippctl import Sipp, uas_args, wait_udp_sip
from tests.e2e_proxy.test_server_hung import invites_read_after

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

INVITE_OK, BYE_OK = "4_200_Recv", "8_200_Recv"


@pytest.fixture(params=["bpf", "reader"])
def sharded(request, cluster_factory):
    """Both ways of steering (proxy/sharding.py): every claim here holds for each."""
    cluster = cluster_factory(start_proxy=False)
    cluster.proxy_extra = ("--processes", "2", "--steering", request.param)
    cluster.start_proxy()
    cluster.steering = request.param
    return cluster


def _nodes(cluster):
    return [cluster.proxy.node(cluster.redis) or {}, _node(cluster, f"{cluster.proxy.node_name}-1")]


def _node(cluster, name):
    raw = cluster.redis.get(f"lb:node:{name}")
    return json.loads(raw) if raw else {}


def _wait_nodes(cluster, predicate, what, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    nodes = []
    while time.monotonic() < end:
        nodes = _nodes(cluster)
        if all(nodes) and predicate(nodes):
            return nodes
        time.sleep(0.1)
    raise AssertionError(f"heartbeats never showed {what}: {nodes}")


def test_calls_spread_over_both_processes_and_their_counts_add_up(sharded):
    calls = 400
    uac = sharded.run_uac(calls=calls, rate=100, hold_ms=100)
    assert int(uac.stats()["SuccessfulCall(C)"]) == calls, sharded.report(uac)
    nodes = _wait_nodes(sharded, lambda ns: sum(n["totals"]["invites"] for n in ns) == calls, f"{calls} INVITEs")
    # both carried calls (crc32 of SIPp's Call-IDs splits them about evenly)
    assert all(n["totals"]["invites"] > calls // 4 for n in nodes), [n["totals"] for n in nodes]
    # the panel shows each worker's steering (and why the reader, when the kernel refused)
    assert [n["steering"] for n in nodes] == [{"mode": sharded.steering, "why": None}] * 2
    # and, behind a reader, that process's share of a core beside each worker's own
    nodes = _wait_nodes(sharded, lambda ns: all(n.get("load") for n in ns), "load figures")
    for node in nodes:
        if sharded.steering == "reader":
            assert isinstance(node["load"]["reader_cpu"], float) and 0 <= node["load"]["reader_cpu"] < 1, node["load"]
        else:
            assert "reader_cpu" not in node["load"], node["load"]
    counts = sharded.stop_all_uas()
    assert sum(c.get("INVITE_Recv", 0) for c in counts.values()) == calls, counts


def test_a_retransmitted_invite_is_absorbed_by_the_process_holding_it(sharded):
    port = sharded.ports.proxy
    with UdpPeer() as caller:
        for n in range(6):  # Call-IDs that land on both workers
            invite = request("INVITE", f"sip:lbtest@127.0.0.1:{port}", caller.port, port, call_id=f"retrans-{n}").encode()
            caller.send(invite, port)
            assert caller.wait_response(lambda r: r.code == 100, 2.0) is not None, sharded.report()
            caller.send(invite, port)
            ok = caller.wait_response(lambda r: r.code == 200, 3.0)
            assert ok is not None, sharded.report()
            assert hang_up(caller, invite, ok, port) is not None, "no 200 for the BYE\n" + sharded.report()
    counts = sharded.stop_all_uas()
    assert sum(c.get("INVITE_Recv", 0) for c in counts.values()) == 6, counts


def test_cancel_reaches_the_server_through_the_process_holding_the_invite(sharded):
    calls = 30
    uac = sharded.run_uac("uac_cancel.xml", calls=calls, rate=50, service="cancel")
    assert int(uac.stats()["SuccessfulCall(C)"]) == calls, sharded.report(uac)
    counts = sharded.stop_all_uas()
    assert sum(c.get("CANCEL_Recv", 0) for c in counts.values()) == calls, counts
    assert sum(c.get("487_Sent", 0) for c in counts.values()) == calls, counts


# failover happens in the workers, on responses and ICMP errors that reach each worker's own port
# under either steering: the slow runs are made once, under the default
@pytest.mark.parametrize("sharded", ["bpf"], indirect=True)
def test_a_killed_server_costs_only_the_calls_up_on_it(sharded):
    calls, rate, hold_ms = 600, 150, 1000
    uac = sharded.uac(calls=calls, rate=rate, hold_ms=hold_ms, recv_timeout_ms=2000)
    sharded.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 40, "40 calls up on ast2")
    sharded.ast[2].kill()
    uac.wait(60)
    answered, ended = uac.count(INVITE_OK), uac.count(BYE_OK)
    assert answered == calls, f"{calls - answered} calls never got a 200 after ast2 died\n" + sharded.report(uac)
    assert int(uac.stats()["FailedCall(C)"]) == calls - ended
    assert calls - ended <= int(0.3 * rate * (hold_ms / 1000 + 0.5) * 1.5)


# failover happens in the workers, on responses and ICMP errors that reach each worker's own port
# under either steering: the slow runs are made once, under the default
@pytest.mark.parametrize("sharded", ["bpf"], indirect=True)
def test_a_hung_server_costs_at_most_three_invites_across_processes(sharded):
    sharded.ast[2].stop()
    port = sharded.ports.ast[2]
    workdir = sharded.tmp_path / "ast2-traced"
    traced = Sipp("uas.xml", workdir, [*uas_args(port), "-trace_msg", "-message_file", "messages.log"], "ast2 traced")
    sharded._procs.append(traced)
    wait_udp_sip(port)
    sharded.ast[2] = traced
    calls = 500
    uac = sharded.uac(calls=calls, rate=50, hold_ms=1000, recv_timeout_ms=3000)
    stopped_at = None
    try:
        sharded.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 30, "30 calls up on ast2", deadline_s=20)
        stopped_at = time.time()
        os.kill(traced.pid, signal.SIGSTOP)
        uac.wait(90)
    finally:
        if stopped_at is not None:
            os.kill(traced.pid, signal.SIGCONT)
    wait_udp_sip(port, deadline_s=10)
    traced.stop(timeout=15)
    assert uac.count(INVITE_OK) == calls, sharded.report(uac)
    reached = invites_read_after(workdir / "messages.log", stopped_at)
    assert len(reached) <= 3, f"{len(reached)} new INVITEs reached the hung ast2\n" + sharded.proxy.tail()


def test_a_call_whose_call_id_the_kernel_cannot_reach_stays_whole(sharded):
    """Past callid_bpf.SCAN_LIMIT the BPF program gives up and the parent places the datagram: it
    must put it where the kernel puts the short CANCEL of the same call, or the CANCEL would
    reach a worker that never saw the INVITE."""
    port = sharded.ports.proxy
    with UdpPeer() as caller:
        for n in range(4):  # Call-IDs on both workers
            invite = request("INVITE", f"sip:cancel@127.0.0.1:{port}", caller.port, port, call_id=f"far-{n}")
            far = invite.replace("\r\nFrom:", "\r\nX-Pad: " + "a" * 9000 + "\r\nFrom:", 1)
            branch = invite.split("branch=", 1)[1].split(";", 1)[0]
            caller.send(far.encode(), port)
            assert caller.wait_response(lambda r: r.code == 180, 3.0) is not None, sharded.report()
            cancel = request("CANCEL", f"sip:cancel@127.0.0.1:{port}", caller.port, port, call_id=f"far-{n}", branch=branch)
            caller.send(cancel.encode(), port)
            assert caller.wait_response(lambda r: r.code == 200 and "CANCEL" in (r.header("cseq") or ""), 3.0), sharded.report()
            assert caller.wait_response(lambda r: r.code == 487, 3.0) is not None, sharded.report()
    counts = sharded.stop_all_uas()
    assert sum(c.get("CANCEL_Recv", 0) for c in counts.values()) == 4, counts


def test_the_proxy_stops_whole_when_a_worker_dies(sharded):
    """A dead worker's calls would be lost (steered by BPF, its socket leaves the group and the
    kernel spreads them over the others, which hold none of their state): stop, and let the
    supervisor restart the whole proxy."""
    workers = [int(c) for c in open(f"/proc/{sharded.proxy.pid}/task/{sharded.proxy.pid}/children").read().split()]
    os.kill(workers[1], signal.SIGKILL)
    try:
        sharded.proxy.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError("the proxy went on without its worker\n" + sharded.proxy.tail()) from None
    assert "stopping the proxy" in sharded.proxy.tail()


def test_workers_stop_when_the_reader_is_killed(sharded):
    workers = [int(c) for c in open(f"/proc/{sharded.proxy.pid}/task/{sharded.proxy.pid}/children").read().split()]
    assert len(workers) == 2
    sharded.proxy.kill()  # SIGKILL: the reader cannot stop them itself
    end = time.monotonic() + 10
    while time.monotonic() < end and any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), f"workers {workers} outlived their reader"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
