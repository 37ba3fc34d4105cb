"""The reader of `runproxy --processes N` sends every message of a call to one worker."""

import logging
import os
import socket
import threading

import pytest

from proxy.sharding import DropCounts, Worker, _distribute, call_id, frame, unframe, worker_for


def _msg(first, call_id_line, eol=b"\r\n"):
    return eol.join([first, b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx", call_id_line, b"CSeq: 1 X", b"", b""])


def test_every_message_of_a_call_goes_to_the_same_worker_whatever_its_spelling():
    spellings = [
        _msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: call-17@host"),
        _msg(b"CANCEL sip:a@b SIP/2.0", b"call-id:call-17@host"),
        _msg(b"ACK sip:a@b SIP/2.0", b"i: call-17@host"),
        _msg(b"BYE sip:a@b SIP/2.0", b"CALL-ID :  call-17@host", eol=b"\n"),
        _msg(b"SIP/2.0 200 OK", b"Call-ID: call-17@host "),
    ]
    assert {call_id(m) for m in spellings} == {b"call-17@host"}
    assert len({worker_for(m, 4) for m in spellings}) == 1


def test_calls_spread_over_the_workers():
    workers = [worker_for(_msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: %d-4711@10.0.0.1" % n), 2) for n in range(1000)]
    assert 400 < workers.count(0) < 600


def test_a_message_without_call_id_still_goes_somewhere():
    assert call_id(b"garbage") == b"" and worker_for(b"garbage", 3) in (0, 1, 2)


def test_the_source_address_survives_the_hand_over():
    assert unframe(frame(b"INVITE ...", ("192.0.2.7", 5071))) == (b"INVITE ...", ("192.0.2.7", 5071))
    assert unframe(frame(b"x", ("2001:db8::1", 5060))) == (b"x", ("2001:db8::1", 5060))


def _call_ids_for(worker, count, n=2):
    ids = (b"%d-stuck@127.0.0.1" % k for k in range(100_000))
    return [c for c in ids if worker_for(_msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: " + c), n) == worker][:count]


def test_a_worker_that_stops_reading_does_not_stop_the_others(caplog):
    # A stopped worker (SIGSTOP, swapped out, stuck in a bug) used to stop the reader once its
    # inbox was full: the reader's blocking send waited for it, and every other worker starved.
    public = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    public.bind(("127.0.0.1", 0))
    public.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    pairs[0][0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # fills after a few datagrams
    live = pairs[1][1]
    live.settimeout(5)
    stop = []
    drops = DropCounts(2)
    reader = threading.Thread(target=_distribute, args=(public, [a for a, _ in pairs], [], stop, drops), daemon=True)
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caplog.set_level(logging.WARNING, logger="proxy.sharding")
    reader.start()
    try:
        for c in _call_ids_for(0, 200):  # worker 0 never reads
            caller.sendto(_msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: " + c), public.getsockname())
        for c in _call_ids_for(1, 3):
            caller.sendto(_msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: " + c), public.getsockname())
        got = [call_id(unframe(live.recv(65600))[0]) for _ in range(3)]
        assert got == _call_ids_for(1, 3)
        assert "worker 0 is not reading its inbox" in caplog.text
        # and each worker's heartbeat can say how many of its own were dropped
        stuck, fine = Worker(0, 2, None, None, drops), Worker(1, 2, None, None, drops)
        assert stuck.dropped() > 0 and fine.dropped() == 0
    finally:
        stop.append(True)
        pairs[0][1].close()  # a reader still blocked on it (the old code) gets an error and sees stop
        reader.join(5)
        for a, b in pairs:
            a.close()
            b.close()
        public.close()
        caller.close()


def test_the_drop_counts_the_reader_writes_are_read_in_a_forked_worker():
    drops = DropCounts(3)
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: reads its slot once the reader has written it
        os.close(go_w)
        os.read(go_r, 1)
        os._exit(min(Worker(2, 3, None, None, drops).dropped(), 255))
    os.close(go_r)
    drops.set(2, 41)
    os.write(go_w, b"g")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 41


def test_a_workers_heartbeat_carries_its_drops():
    from proxy.accounting import Accounting

    acc = Accounting(core=None)
    drops = DropCounts(1)
    acc.read_totals["inbox_dropped"] = Worker(0, 1, None, None, drops).dropped
    drops.set(0, 12)
    totals, _ = acc.snapshot()
    assert totals["inbox_dropped"] == 12


def test_a_worker_sheds_when_the_reader_falls_behind():
    # The reader's backlog waits on the public socket. Each worker measured only its own inbox, so a
    # reader short of CPU let setup times grow with no 503 from anyone.
    import asyncio
    import time

    from proxy.core import Proxy
    from proxy.sharding import attach_inbox

    public = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    public.bind(("127.0.0.1", 0))
    inbox, _reader_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def scenario():
        loop = asyncio.get_running_loop()
        core = Proxy(loop, "t-reader-behind")
        worker = Worker(0, 2, public.getsockname(), inbox)
        worker.public_sock = public
        attach_inbox(core, loop, worker, None)
        caller.sendto(_msg(b"INVITE sip:a@b SIP/2.0", b"Call-ID: behind-1"), public.getsockname())  # nobody reads it
        # Sampled until it shows, not once after a sleep: when no socket on the host had receive
        # timestamps on, the kernel turns them on a moment later (a deferred static key), and a
        # datagram that came in meanwhile is stamped when it is first peeked at (CI saw 0.000 once).
        delay, end = 0.0, time.monotonic() + 3
        while delay < 0.07 and time.monotonic() < end:
            await asyncio.sleep(0.02)
            core.overload._sample()
            delay = core.overload.queue_delay
        loop.remove_reader(inbox.fileno())
        core.overload.stop()
        return delay

    try:
        started = time.monotonic()
        delay = asyncio.run(scenario())
        assert 0.07 <= delay <= time.monotonic() - started, f"queue delay {delay:.3f} s: the public socket's backlog unseen"
    finally:
        for s in (public, inbox, _reader_end, caller):
            s.close()


def test_auto_steering_falls_back_to_the_reader_and_says_why(monkeypatch, caplog):
    from proxy import callid_bpf, sharding

    def refused(*_):
        raise callid_bpf.Unavailable("the kernel refused the program: Operation not permitted")

    monkeypatch.setattr(callid_bpf, "CallIdGroup", refused)
    with caplog.at_level(logging.WARNING, logger="proxy.sharding"):
        group, why = sharding._steer_by_bpf("127.0.0.1", 5060, 2, "auto")
    assert group is None and "Operation not permitted" in why
    assert "steered by a reader process" in caplog.text and "Operation not permitted" in caplog.text
    with pytest.raises(SystemExit, match="--steering bpf: the kernel refused"):
        sharding._steer_by_bpf("127.0.0.1", 5060, 2, "bpf")
    assert sharding._steer_by_bpf("127.0.0.1", 5060, 2, "reader") == (None, None)
