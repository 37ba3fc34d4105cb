"""A server that hangs (SIGSTOP: no ICMP, its port still bound, nothing comes back) costs at most
3 new INVITEs and no call at setup; only the calls already up on it may fail.

ast2 runs with SIPp's -trace_msg. While it is stopped the kernel queues what reaches it, and
SIPp logs those messages only after SIGCONT, stamped with the time it read them: every INVITE
logged after the stop reached it while it was hung.
"""

import os
import re
import signal
import time
from datetime import datetime

import pytest

from tests.e2e_proxy.sippctl import Sipp, uas_args, wait_udp_sip

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

CALLS, RATE, HOLD_MS = 500, 50, 1000  # the failover bench's rate: 15 INVITEs/s reach ast2
INVITE_OK, BYE_OK = "4_200_Recv", "8_200_Recv"
STAMP = re.compile(rb"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\r?\n(UDP|TCP) message received", re.M)
CALL_ID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)


def invites_read_after(path, since):
    """Distinct Call-IDs of the INVITEs SIPp logged as received after `since` (epoch seconds)."""
    text = path.read_bytes()
    starts = list(STAMP.finditer(text))
    found = set()
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        body = text[m.end() : end].split(b"\n", 1)[-1].lstrip()  # after "[n] bytes :"
        stamp = datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if stamp >= since and body.startswith(b"INVITE "):
            cid = CALL_ID.search(body)
            found.add(cid.group(1) if cid else body[:80])
    return found


def test_a_hung_server_costs_at_most_three_invites_and_no_call_at_setup(cluster):
    # ast2 again, now logging every message it reads
    cluster.ast[2].stop()
    port = cluster.ports.ast[2]
    workdir = cluster.tmp_path / "ast2-traced"
    traced = Sipp("uas.xml", workdir, [*uas_args(port), "-trace_msg", "-message_file", "messages.log"], "ast2 traced")
    cluster._procs.append(traced)
    wait_udp_sip(port)
    cluster.ast[2] = traced

    uac = cluster.uac(calls=CALLS, rate=RATE, hold_ms=HOLD_MS, recv_timeout_ms=3000)
    stopped_at = None
    try:
        cluster.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 30, "30 calls up on ast2", deadline_s=20)
        stopped_at = time.time()
        os.kill(traced.pid, signal.SIGSTOP)
        uac.wait(90)
    finally:
        if stopped_at is not None:
            os.kill(traced.pid, signal.SIGCONT)
    # its socket is a queue: the answer to this OPTIONS comes after SIPp has read what was queued
    wait_udp_sip(port, deadline_s=10)
    traced.stop(timeout=15)

    answered, ended = uac.count(INVITE_OK), uac.count(BYE_OK)
    failed = int(uac.stats()["FailedCall(C)"])
    assert answered == CALLS, f"{CALLS - answered} calls failed at setup\n" + cluster.report(uac)
    assert failed == CALLS - ended, f"failed={failed} ended={ended}\n" + cluster.report(uac)
    reached = invites_read_after(workdir / "messages.log", stopped_at)
    assert len(reached) <= 3, f"{len(reached)} new INVITEs reached the hung ast2: {sorted(reached)}\n" + cluster.proxy.tail()
    assert "suspect" in cluster.proxy.tail(100000)
