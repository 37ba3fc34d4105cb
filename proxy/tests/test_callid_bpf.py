"""The kernel's Call-ID hash (proxy/callid_bpf.py), on real sockets: every datagram of a call must
reach the socket `call_id_hash` names, whoever sends it and however the header is spelled."""

import errno
import os
import select
import socket
import struct
import tempfile

import pytest

from proxy import callid_bpf, sharding

WORKERS = 3


@pytest.fixture
def group():
    port = sharding.own_port("127.0.0.1")
    group = callid_bpf.CallIdGroup("127.0.0.1", port, WORKERS)
    for s in group.socks:
        s.setblocking(False)
    group.port = port
    yield group
    group.close()


@pytest.fixture
def sender():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        yield s


def _landed(group, deadline_s=2.0):
    """The index of the socket the datagram reached, and the datagram."""
    ready, _, _ = select.select(group.socks, [], [], deadline_s)
    assert ready, "the datagram reached no socket of the group"
    assert len(ready) == 1, "one datagram, several sockets"
    return group.socks.index(ready[0]), ready[0].recv(70000)


def _invite(call_id_line, before=""):
    return (
        "INVITE sip:100@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
        "In-Reply-To: 70710@saturn.bell-tel.com\r\n"  # starts like the compact "i"
        f"{before}{call_id_line}\r\n"
        "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _owner(call_id):
    return callid_bpf.call_id_hash(call_id.encode()) % WORKERS


@pytest.mark.parametrize(
    "line",
    ["Call-ID: {}", "call-id: {}", "CALL-ID:{}", "Call-ID :\t{}", "i: {}", "I:{}", "i :  {}  "],
)
def test_every_spelling_of_the_header_reaches_the_worker_its_value_names(group, sender, line):
    for n in range(12):
        call_id = f"spell-{n}@192.0.2.1"
        sender.sendto(_invite(line.format(call_id)), ("127.0.0.1", group.port))
        assert _landed(group)[0] == _owner(call_id), line


def test_one_trunk_spreads_over_every_worker_and_each_call_stays_whole(group, sender):
    """Plain SO_REUSEPORT would give one source address one worker."""
    seen = [0] * (WORKERS + 1)
    for n in range(150):
        call_id = f"{n:x}-trunk@carrier.example"
        for line in (f"Call-ID: {call_id}", f"i: {call_id}"):  # the INVITE, then its CANCEL, in the other form
            sender.sendto(_invite(line), ("127.0.0.1", group.port))
            where, _ = _landed(group)
            assert where == _owner(call_id)
            seen[where] += 1
    assert all(count > 50 for count in seen[:WORKERS]), seen
    assert seen[WORKERS] == 0, "nothing with a Call-ID belongs to the spill socket"


@pytest.mark.parametrize(
    "datagram",
    [
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1\r\n\r\n",
        b"\r\n\r\n",  # a keep-alive
        b"INVITE sip:x SIP/2.0\r\nCall-IDs: not-the-header\r\nIn-Reply-To: nor-this\r\n\r\nv=0\r\ni=not a header\r\n",
        b"",
    ],
)
def test_a_datagram_without_a_call_id_goes_to_the_spill_socket(group, sender, datagram):
    sender.sendto(datagram, ("127.0.0.1", group.port))
    assert _landed(group)[0] == WORKERS


def test_a_call_id_past_the_scan_limit_is_spilled_and_placed_where_the_kernel_places_it(group, sender):
    for n in range(6):
        call_id = f"far-{n}"
        far = _invite(f"Call-ID: {call_id}", before="X-Pad: " + "a" * callid_bpf.SCAN_LIMIT + "\r\n")
        sender.sendto(far, ("127.0.0.1", group.port))
        where, data = _landed(group)
        assert where == WORKERS
        assert sharding._pick_bpf(data, WORKERS) == _owner(call_id)


def test_a_payload_outside_the_linear_buffer_is_still_read(group, sender):
    """sendfile() and splice() build the datagram from pages, as many NICs' drivers do; the program
    must copy those bytes out rather than give up on them."""
    sender.connect(("127.0.0.1", group.port))
    for n in range(8):
        call_id = f"paged-{n}@192.0.2.1"
        with tempfile.TemporaryFile() as fh:
            fh.write(_invite(f"Call-ID: {call_id}", before="X-Pad: " + "b" * 200 + "\r\n"))
            fh.flush()
            os.sendfile(sender.fileno(), fh.fileno(), 0, fh.tell())
        assert _landed(group)[0] == _owner(call_id)


def test_a_long_call_id_lands_where_its_first_hash_max_bytes_say(group, sender):
    # The kernel and the spill must agree on Call-IDs longer than what is hashed: both stop at
    # HASH_MAX, so calls that differ only past it share a worker, and stay whole either way.
    for n in range(8):
        call_id = f"{n}-" + "x" * (callid_bpf.HASH_MAX + 300) + f"-{n}"
        sender.sendto(_invite(f"Call-ID: {call_id}"), ("127.0.0.1", group.port))
        assert _landed(group)[0] == _owner(call_id)
        far = _invite(f"Call-ID: {call_id}", before="X-Pad: " + "a" * callid_bpf.SCAN_LIMIT + "\r\n")
        sender.sendto(far, ("127.0.0.1", group.port))
        where, data = _landed(group)
        assert where == WORKERS and sharding._pick_bpf(data, WORKERS) == _owner(call_id)


def test_the_spill_hashes_no_more_of_a_call_id_than_hash_max():
    # A 60 KB Call-ID cost the spill's owner 5 ms of Python per datagram: a lever on a core.
    head = b"h" * callid_bpf.HASH_MAX
    assert callid_bpf.call_id_hash(head + b"a" * 60_000) == callid_bpf.call_id_hash(head + b"b")
    assert callid_bpf.call_id_hash(head[:-1] + b"a") != callid_bpf.call_id_hash(head[:-1] + b"b")


def test_the_hash_is_the_programs():
    assert callid_bpf.call_id_hash(b"") == 5381
    assert callid_bpf.call_id_hash(b"a") == (5381 * 33) ^ ord("a")
    assert callid_bpf.call_id_hash(b"abc def") == callid_bpf.call_id_hash(b"abc")


def test_a_worker_that_stops_reading_counts_what_the_kernel_dropped_for_it(group, sender):
    """Steered by BPF there is no reader to count a stalled worker's losses: its own socket's drop
    count goes into its heartbeat's inbox_dropped, or the panel would show 0 while calls were lost."""
    mine = group.socks[0]
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel doubles it; a few datagrams fill it
    worker = sharding.Worker(0, WORKERS, ("127.0.0.1", group.port), None, sharding.DropCounts(WORKERS), steered=True)
    worker.public_sock = mine
    ours = [f"stalled-{n}" for n in range(400) if _owner(f"stalled-{n}") == 0][:60]
    for call_id in ours:
        sender.sendto(_invite(f"Call-ID: {call_id}", before="X-Pad: " + "c" * 400 + "\r\n"), ("127.0.0.1", group.port))
    kept = 0
    while select.select([mine], [], [], 0.2)[0]:
        mine.recv(70000)
        kept += 1
    assert kept < len(ours)
    assert worker.dropped() == len(ours) - kept


def test_a_port_already_taken_is_refused(group):
    """Neither a second group (a second `--processes` proxy started by mistake) nor a group on the
    port of a single-process proxy, whose listener also sets SO_REUSEPORT, may share its calls."""
    with pytest.raises(OSError) as caught:
        callid_bpf.CallIdGroup("127.0.0.1", group.port, WORKERS)
    assert caught.value.errno == errno.EADDRINUSE
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as single:
        single.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        single.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as caught:
            callid_bpf.CallIdGroup("127.0.0.1", single.getsockname()[1], WORKERS)
    assert caught.value.errno == errno.EADDRINUSE


def test_ipv6_datagrams_are_steered_the_same_way():
    port = sharding.own_port("::1")
    group = callid_bpf.CallIdGroup("::1", port, WORKERS)
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender:
            for n in range(12):
                call_id = f"v6-{n}@[2001:db8::1]"
                sender.sendto(_invite(f"Call-ID: {call_id}"), ("::1", port))
                assert _landed(group)[0] == _owner(call_id)
    finally:
        group.close()


def test_a_signal_during_verification_does_not_cost_the_kernel_steering():
    """The verifier returns EAGAIN when a signal arrives while it works (a SIGCHLD, in CI from a
    test before): the load is tried again, as libbpf does, instead of falling back to the reader."""
    real = callid_bpf._syscall()
    interrupted = []

    def bpf(cmd, attr):
        if cmd == callid_bpf._BPF_PROG_LOAD and len(interrupted) < 2:
            interrupted.append(cmd)
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        return real(cmd, attr)

    map_fd = real(callid_bpf._BPF_MAP_CREATE, struct.pack("<IIIII", callid_bpf._MAP_REUSEPORT_SOCKARRAY, 4, 8, 3, 0))
    try:
        insns, callback_at = callid_bpf.program(2, map_fd)
        prog_fd = callid_bpf.CallIdGroup._load(bpf, insns, callback_at)
        os.close(prog_fd)
    finally:
        os.close(map_fd)
    assert len(interrupted) == 2
