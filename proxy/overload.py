"""Overload: measure how late our own processing is, and shed new calls while it is.

The signal is the delay a request suffers before we act on it, sampled every
SAMPLE_EVERY by one timer on the core's wheel (its own loop timer woke an idle proxy 50
times a second on top of the wheel's ticks), nothing per message:
- queue delay: the kernel receive time (SO_TIMESTAMPNS) of the oldest datagram still
  waiting on each UDP listener, read with MSG_PEEK so it stays queued. uvloop's datagram
  endpoint reads through libuv and drops ancillary data, so per-datagram timestamps are
  out of reach on the hot path; a peek at the head of the queue gives the same answer
  for one syscall per sample.
- loop lag: how late the wheel's tick ran.
Past capacity the loop lag stays at a few milliseconds (every iteration reads a bounded
batch) while the kernel queue grows to seconds: that backlog is what made callers time
out, and pending INVITE transactions (max_pending_invites) never saw it. TCP has no
per-segment timestamps here; only the loop lag covers it.

Control: new out-of-dialog INVITEs are admitted at a fraction `admit` (additive increase,
multiplicative decrease), so under sustained overload the proxy settles near what it
can carry instead of flapping between all and nothing: every sample past the mark
(overload_lag_ms) may cut it, unless it is the first or the backlog is draining (a stall,
not overload); every sample below raises it. `shedding` is the state that
is logged: it starts with the first cut and ends only after `admit` is back at 1 and the
signal has stayed under a quarter of the mark for LEAVE_AFTER.
"""

import logging
import os
import socket
import struct

log = logging.getLogger("proxy.overload")

SAMPLE_EVERY = 0.02
# With no transaction live and a calm signal there is nothing to shed: an idle proxy samples 5
# times a second, not 50 (its wake-ups were most of an idle worker's CPU). The first request makes
# a transaction, so a flood is sampled every SAMPLE_EVERY again from at most this much later.
SAMPLE_IDLE_EVERY = 0.2
DECREASE_EVERY = 0.1  # let a cut take effect on the queue before cutting again
INCREASE_STEP = 0.02  # per calm sample: from nothing to everything in 1 s
LEAVE_AFTER = 2.0

# Linux values (asm-generic; x86, arm): Python's socket module does not name them.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
# a plain int: `socket.MSG_PEEK | socket.MSG_DONTWAIT` is an enum operation in Python, and was a
# fifth of an idle proxy's CPU at three sockets per sample
_PEEK_NOWAIT = int(socket.MSG_PEEK) | int(socket.MSG_DONTWAIT)


def enable_timestamps(sock):
    """Ask the kernel to stamp every datagram this socket receives; False when it cannot."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return True
    except OSError:
        return False


def head_received(sock):
    """Wall-clock receive time of the oldest datagram queued on `sock`, None when empty."""
    try:
        _, anc, _, _ = sock.recvmsg(1, 64, _PEEK_NOWAIT)
    except BlockingIOError:
        return None
    except ConnectionRefusedError:
        raise  # a connected socket's ICMP error, consumed by this read: the caller must act on it
    except OSError:
        return None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec * 1e-9
    return None


class OverloadGuard:
    def __init__(self, wheel, wall_clock, busy=None):
        self.wheel = wheel
        self.busy = busy or (lambda: True)  # whether any transaction is live (the core's)
        self.loop = wheel.loop
        self.wall_clock = wall_clock
        self.socks = []  # dup'd listener sockets we peek at (uvloop's own is a pseudo-socket)
        self.handle = None
        self.high = 0.2  # from the table: overload_lag_ms
        self.lag = 0.0  # last measured signal, seconds
        self.loop_lag = 0.0
        self.queue_delay = 0.0
        self.injected = 0.0  # test hook: added to what is measured
        self.admit = 1.0
        self.credit = 0.0
        self.shedding = False
        self.shed = 0  # INVITEs shed in the current episode
        self.started = 0.0
        self.peak = 0.0
        self.last_cut = -1e9
        self.calm_since = None
        self.was_over = False  # the previous sample was past the mark
        self.prev_lag = 0.0  # and its lag
        self.worst = 0.0  # the highest signal since the heartbeat last read it (take_worst)

    def watch(self, sock):
        """Sample the receive queue of a UDP listener socket (uvloop's pseudo-socket is fine)."""
        if not enable_timestamps(sock):
            return
        try:
            dup = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        dup.setblocking(False)
        self.socks.append(dup)

    def start(self):
        self.handle = self.wheel.call_later(SAMPLE_EVERY, self._tick, None)

    def stop(self):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if self.shedding:
            self._end(self.loop.time())  # the episode's count belongs in the log even at shutdown
        for s in self.socks:
            s.close()
        self.socks = []

    def admit_invite(self):
        """Whether to take a new call now; the caller counts and answers a refusal."""
        if self.admit >= 1.0:
            return True
        self.credit += self.admit
        if self.credit >= 1.0:
            self.credit -= 1.0
            return True
        self.shed += 1
        return False

    def _tick(self, _arg, _late):
        self._sample()
        calm = self.lag < self.high / 4 and self.admit >= 1.0 and not self.shedding
        every = SAMPLE_IDLE_EVERY if calm and not self.busy() else SAMPLE_EVERY
        self.handle = self.wheel.call_later(every, self._tick, None)

    def _sample(self):
        now = self.loop.time()
        self.loop_lag = max(0.0, self.wheel.lag)
        queue = 0.0
        if self.socks:
            wall = self.wall_clock()
            for s in self.socks:
                try:
                    t = head_received(s)
                except ConnectionRefusedError:
                    continue
                if t is not None and wall - t > queue:
                    queue = wall - t
        self.queue_delay = queue
        self.lag = max(self.loop_lag, queue) + self.injected
        if self.lag > self.worst:
            self.worst = self.lag
        self.update(now)

    def take_worst(self):
        """The highest signal since the last call (seconds): the heartbeat's load figure."""
        worst, self.worst = self.worst, 0.0
        return worst

    def update(self, now):
        lag, high = self.lag, self.high
        if lag >= high:
            self.calm_since = None
            # A stall (the host ran someone else, a long GC) leaves one late sample, then a
            # backlog we drain faster than it came: its age falls by more than a sample's time
            # from one sample to the next. Overload is a backlog that does not shrink.
            stall = not self.was_over or lag < self.prev_lag - SAMPLE_EVERY
            self.was_over = True
            self.prev_lag = lag
            if stall:
                return
            if self.shedding and lag > self.peak:
                self.peak = lag
            if now - self.last_cut >= DECREASE_EVERY:
                self.last_cut = now
                # the further past the mark, the harder the cut
                self.admit *= min(0.7, high / lag)
                if self.admit < 0.02:
                    self.admit = 0.0
                if not self.shedding:
                    self._begin(now)
            return
        self.was_over = False
        # below the mark: take more calls again (holding here instead kept shedding calls
        # the proxy could carry whenever the delay settled between the marks)
        if self.admit < 1.0:
            self.admit = min(1.0, self.admit + INCREASE_STEP)
            if self.admit >= 1.0:
                self.credit = 0.0
        if lag >= high / 4:
            self.calm_since = None
        elif self.calm_since is None:
            self.calm_since = now
        if self.shedding and self.admit >= 1.0 and self.calm_since is not None and now - self.calm_since >= LEAVE_AFTER:
            self._end(now)

    def _begin(self, now):
        self.shedding = True
        self.started = now
        self.shed = 0
        self.peak = self.lag
        log.warning(
            "overload: shedding new INVITEs with 503, lag %.0f ms (queue %.0f ms, loop %.0f ms), admitting %.0f%%",
            self.lag * 1000,
            self.queue_delay * 1000,
            self.loop_lag * 1000,
            self.admit * 100,
        )

    def _end(self, now):
        self.shedding = False
        log.warning(
            "overload over: shed %d INVITEs in %.1f s, peak lag %.0f ms, lag now %.0f ms",
            self.shed,
            now - self.started,
            self.peak * 1000,
            self.lag * 1000,
        )
