"""`runproxy --processes N`: N proxy processes behind one UDP address, every call kept in one of them.

A transaction and its dialog share one Call-ID, so a retransmitted INVITE, its CANCEL and ACK, and
the dialog's BYE must all reach the worker that holds its state. Plain SO_REUSEPORT spreads by
source address: one carrier trunk (one address, one port) would land on one process. Two ways to
steer by Call-ID, chosen with --steering (default auto: the first, else the second):

- bpf: each worker has its own socket on the public address, in one SO_REUSEPORT group whose
  eBPF program hashes the Call-ID in the kernel (proxy/callid_bpf.py). No process handles a
  datagram before its worker. What the program cannot place (no Call-ID in the bytes it may
  read) goes to a spill socket this parent process reads, hashes the same way, and forwards.
- reader: this parent owns the public socket, finds each datagram's Call-ID with a bytes search
  and hands it to worker crc32(Call-ID) % N over a Unix datagram socket: one recv and one send
  per datagram from callers. It needs no privilege (loading BPF needs CAP_BPF or root).

Either way responses of servers come straight back to the worker that sent the request: each
worker has a port of its own, named in its Via (its per-destination sockets use it too, so an
ICMP error still tells it which server died). Record-Route names the public address, so
in-dialog requests come back through the public address. Workers answer and relay upstream from a
public-address socket, so callers see one address.

Each worker is a node of its own (lb:node:<name>, <name>-1, ...): heartbeats, counters and
dialog records are per worker and the panel sums live nodes, as for several proxies.

TCP and TLS are served by worker 0 alone (it accepts the connections and opens those to servers),
so a call with such a leg lives there: a TCP caller's (its INVITE came in on worker 0's
connection) and a UDP caller's to a set with a TCP or TLS destination. Worker 0 names itself in
its Record-Route (`;lbw=0`); another worker hands worker 0's inbox (`HandOver`) an in-dialog
request carrying that mark (the caller's BYE, or a server's for a TCP caller), a request before the
dialog from a source whose set has a TCP or TLS destination (the INVITE, its CANCEL), and a response
naming another worker's port in its Via (worker 0 sent the request from the public address and
the peer answered there). tests/e2e_proxy/test_server_hangs_up.py, test_tcp_server_hangs_up.py.
"""

import ctypes
import logging
import mmap
import os
import re
import select
import signal
import socket
import struct
import time
import zlib

from proxy import callid_bpf
from proxy.logquota import LogQuota

log = logging.getLogger("proxy.sharding")

CALL_ID = re.compile(rb"\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)", re.I)
_PORT = struct.Struct("!H")
INBOX_BUFFER = 8 << 20
READY_WAIT = 30.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_SO_MEMINFO, _SK_MEMINFO_DROPS = 55, 8  # asm-generic/socket.h, linux/sock_diag.h
_MEMINFO = struct.Struct("9I")


def call_id(data):
    """The Call-ID value of a SIP datagram, b"" when it has none (the worker then refuses it)."""
    i = data.find(b"\nCall-ID:")
    if i >= 0:
        j = data.find(b"\n", i + 9)
        return data[i + 9 : j].strip()  # strip() takes the \r
    m = CALL_ID.search(data)
    return m.group(1).strip() if m else b""


def worker_for(data, n):
    return _pick_crc(data, n)


def frame(data, addr):
    ip = addr[0].encode()
    return bytes((len(ip),)) + ip + _PORT.pack(addr[1]) + data


def unframe(buf):
    n = buf[0]
    ip = buf[1 : 1 + n].decode()
    (port,) = _PORT.unpack_from(buf, 1 + n)
    return buf[3 + n :], (ip, port)


class Worker:
    """What a worker process gets from the reader: its inbox and the public socket to send from."""

    def __init__(self, index, count, public, inbox, drops=None, steered=False, steering_why=None):
        self.index = index
        self.count = count
        self.public = public  # (host, port) callers send to
        self.inbox = inbox
        self.public_sock = None  # set in the worker: its own socket in the BPF group, or the reader's
        self.drops = drops  # DropCounts shared with the reader
        self.steered = steered  # the kernel hands this worker its calls on public_sock (bpf steering)
        self.steering_why = steering_why  # why the reader steers, when "auto" asked the kernel first
        self.to_first = None  # on workers other than 0: worker 0's inbox, for what needs its TCP

    def dropped(self):
        """Datagrams for this worker dropped because it was not reading: by the reader, its inbox
        full (since the reader started), and, steered by BPF, by the kernel, its socket full."""
        total = self.drops.get(self.index) if self.drops is not None else 0
        if self.steered and self.public_sock is not None:
            total += socket_drops(self.public_sock)
        return total


def sibling_names(node_name, worker):
    """The node names of the other workers of this proxy (worker i > 0 is <name>-i), () for one process."""
    if worker is None or worker.count < 2:
        return ()
    base = node_name if worker.index == 0 else node_name[: -len(f"-{worker.index}")]
    return tuple(base if j == 0 else f"{base}-{j}" for j in range(worker.count) if j != worker.index)


def socket_drops(sock):
    """What the kernel dropped on this socket, its receive buffer full (SO_MEMINFO's SK_MEMINFO_DROPS)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, _MEMINFO.size)
    return _MEMINFO.unpack_from(raw)[_SK_MEMINFO_DROPS]


class DropCounts:
    """One counter per worker in memory shared across the fork: the reader writes, each worker reads
    its own for its heartbeat (the reader has no Redis client and no loop to send one with)."""

    _SLOT = struct.Struct("Q")

    def __init__(self, count):
        self.mem = mmap.mmap(-1, self._SLOT.size * count)  # anonymous and MAP_SHARED: seen by the forked workers

    def set(self, i, value):
        self._SLOT.pack_into(self.mem, i * self._SLOT.size, value)

    def get(self, i):
        return self._SLOT.unpack_from(self.mem, i * self._SLOT.size)[0]


class PublicSender:
    """A worker's upstream sends leave from the public socket, so callers see one address."""

    def __init__(self, sock):
        self.sock = sock

    def send(self, data, addr):
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            pass  # queue full: the transaction layer retransmits
        except OSError as exc:
            log.warning("send to %s:%s failed: %s", addr[0], addr[1], exc)


class HandOver:
    """Sends a datagram to worker 0's inbox, as the reader would (it then reads it as if from `addr`)."""

    def __init__(self, sock):
        self.sock = sock
        self.quota = LogQuota(1, log, "datagrams not handed to worker 0")

    def __call__(self, data, addr):
        try:
            self.sock.send(frame(data, addr), socket.MSG_DONTWAIT)
        except OSError as exc:  # its inbox full, or worker 0 gone: the sender retransmits
            self.quota.warning(time.monotonic(), "could not hand a datagram from %s:%s to worker 0: %s", addr[0], addr[1], exc)


def attach_inbox(core, loop, worker, listener):
    """Read what the reader hands this worker (and, steered by BPF, what the kernel does) as if
    it came in on `listener` (its own port)."""
    _read(core, loop, worker.inbox, listener, lambda sock: unframe(sock.recv(65600)))
    core.accounting.read_totals["inbox_dropped"] = worker.dropped
    core.overload.watch(worker.inbox)  # what waits for this worker
    if worker.steered:
        _read(core, loop, worker.public_sock, listener, lambda sock: sock.recvfrom(65535))
    # its calls wait on the public socket (its own, or the reader's: when the reader falls behind,
    # starved of CPU or the hop is the limit, they queue there and nobody shed while setup grew)
    core.overload.watch(worker.public_sock)


def _read(core, loop, sock, listener, receive):
    sock.setblocking(False)

    def readable():
        for _ in range(64):
            try:
                data, addr = receive(sock)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error on the unconnected socket: nobody to tell
                log.debug("udp %s: %s", listener, exc)
                continue
            core.on_message(data, listener, (addr[0], addr[1]), None)

    loop.add_reader(sock.fileno(), readable)


def setup_listener(core, worker, lis):
    """The worker's own UDP listener: Via names its own port (responses come straight back),
    Record-Route the public address, and it sends from the public socket."""
    hostpart = f"[{lis.advertised}]" if ":" in lis.advertised else lis.advertised
    lis.via_prefix = b"Via: SIP/2.0/UDP " + f"{hostpart}:{lis.port}".encode() + b";branch="
    lis.send = PublicSender(worker.public_sock).send
    core.my_ports.setdefault(worker.public[1], set()).add(worker.public[0])


def own_port(host):
    """A free port for a worker's own socket (bound again at once by the listener)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def run(listen, processes, start_worker, steering="auto"):
    """Bind the public UDP address, fork the workers (`start_worker(Worker)` runs one and never
    returns), then forward what the kernel or the reader hands this process until SIGTERM/SIGINT,
    then stop them. `steering`: "bpf", "reader" or "auto" (see the module's text)."""
    udp = [spec for spec in listen if spec[0] == "udp"]
    if len(udp) != 1:
        raise SystemExit("--processes needs exactly one udp --listen")
    _, host, port = udp[0]
    group, why = _steer_by_bpf(host, port, processes, steering)
    public = group.socks[-1] if group is not None else _bind_public(host, port)
    own = group.socks[:-1] if group is not None else [public] * processes
    for sock in {*own, public}:
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
            except OSError:
                pass
    ready_r, ready_w = os.pipe()
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(processes)]
    for a, b in pairs:
        for s in (a, b):
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                s.setsockopt(socket.SOL_SOCKET, opt, INBOX_BUFFER)
    pids = []
    parent = os.getpid()
    drops = DropCounts(processes)
    for i in range(processes):
        pid = os.fork()
        if pid == 0:  # the worker: keep its own inbox, its public socket and the ready pipe
            _die_with_parent(parent)
            os.close(ready_r)
            for j, (a, b) in enumerate(pairs):
                if not (j == 0 and i != 0):  # the way into worker 0's inbox: it holds TCP
                    a.close()
                if j != i:
                    b.close()
            if group is not None:
                for j, sock in enumerate(group.socks):
                    if j != i:
                        sock.close()
            worker = Worker(i, processes, (host, port), pairs[i][1], drops, group is not None, why)
            worker.to_first = pairs[0][0] if i != 0 else None
            worker.public_sock = own[i]
            worker.ready_fd = ready_w
            code = 1
            try:
                start_worker(worker)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker %d failed", i)
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(ready_w)
    outs = [a for a, _ in pairs]
    for _, b in pairs:
        b.close()
    if group is not None:
        for sock in own:
            sock.close()  # each is its worker's now: when that worker dies, its socket leaves the group
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    how = "steered by the kernel (BPF Call-ID hash)" if group is not None else "steered by this reader"
    try:
        if _wait_ready(ready_r, processes, pids):
            log.warning("proxy ready: %d processes behind udp:%s:%s, %s (pids %s)", processes, host, port, how, pids)
        pick = _pick_bpf if group is not None else _pick_crc
        _distribute(public, outs, pids, stop, drops, pick)
    finally:
        _stop_workers(pids)
        os.close(ready_r)


def _steer_by_bpf(host, port, processes, steering):
    """The BPF group, or None and why not (None when the reader was asked for)."""
    if steering == "reader":
        return None, None
    try:
        return callid_bpf.CallIdGroup(host, port, processes), None
    except callid_bpf.Unavailable as exc:
        if steering == "bpf":
            raise SystemExit(f"--steering bpf: {exc}") from None
        log.warning("calls steered by a reader process, not the kernel: %s", exc)
        return None, str(exc)
    except OSError as exc:
        raise SystemExit(f"cannot listen on udp:{host}:{port}: {exc.strerror or exc}") from None


def _bind_public(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    public = socket.socket(family, socket.SOCK_DGRAM)
    try:
        public.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"cannot listen on udp:{host}:{port}: {exc.strerror or exc}") from None
    return public


def _pick_crc(data, n):
    return zlib.crc32(call_id(data)) % n


def _pick_bpf(data, n):
    """Where the BPF program would have put it, had it found the Call-ID."""
    return callid_bpf.call_id_hash(call_id(data)) % n


def _die_with_parent(parent):
    """A reader killed with SIGKILL cannot stop its workers: the kernel does (PR_SET_PDEATHSIG),
    or they would go on heartbeating as nodes with nobody feeding them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _wait_ready(fd, count, pids):
    end = time.monotonic() + READY_WAIT
    seen = 0
    os.set_blocking(fd, False)
    while seen < count and time.monotonic() < end:
        try:
            got = os.read(fd, count)
        except BlockingIOError:
            got = None
        if got == b"":
            return False  # every worker closed it: they died
        seen += len(got or b"")
        if seen < count:
            time.sleep(0.02)
    return seen >= count


class Overflow:
    """Datagrams dropped because a worker's inbox was full, logged once a second at most.

    The reader never waits for a worker: a worker that stops reading (stopped, swapped out, in a
    bug) would otherwise stop the reader once its inbox is full (8 MB, ~2 s of its calls), and with
    it every other worker. Its own datagrams are dropped instead, as UDP would drop them, and the
    callers retransmit; the other workers' calls go on."""

    def __init__(self, count, counts=None):
        self.counts = (
            counts if counts is not None else DropCounts(count)
        )  # shared with the workers: each heartbeat carries its own
        self.logged = [0] * count
        self.last_log = 0.0

    def drop(self, i, now):
        counts = self.counts
        counts.set(i, counts.get(i) + 1)
        if now - self.last_log >= 1.0:
            self.last_log = now
            for j, seen in enumerate(self.logged):
                total = counts.get(j)
                if total > seen:
                    log.warning("worker %d is not reading its inbox: %d datagrams dropped (%d in all)", j, total - seen, total)
                    self.logged[j] = total


def _distribute(public, outs, pids, stop, drops=None, pick=_pick_crc):
    n = len(outs)
    public.setblocking(False)
    for out in outs:
        out.setblocking(False)
    overflow = Overflow(n, drops)
    last_check = time.monotonic()
    while not stop:
        try:
            data, addr = public.recvfrom(65535)
        except BlockingIOError:
            data = None
            try:
                select.select([public], [], [], 0.5)  # idle: wake for SIGTERM and dead workers
            except InterruptedError:
                pass
        except InterruptedError:
            continue
        except OSError as exc:  # an ICMP error reported on the unconnected socket: nobody to tell
            log.debug("public socket: %s", exc)
            continue
        now = time.monotonic()
        if data is not None:
            i = pick(data, n) if n > 1 else 0
            try:
                outs[i].send(frame(data, addr))
            except BlockingIOError:
                overflow.drop(i, now)
            except OSError as exc:
                log.warning("worker %d inbox: %s", i, exc)
        if now - last_check > 0.5:
            last_check = now
            for pid in pids:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    log.error("worker pid %d exited (status %s): stopping the proxy", pid, status)
                    pids.remove(pid)
                    return


def _stop_workers(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 10
    left = list(pids)
    while left and time.monotonic() < end:
        for pid in list(left):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                left.remove(pid)
        if left:
            time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
