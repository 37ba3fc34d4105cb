"""Call records (lbcore.calls), written off the message path.

The message path only appends a tuple: `setup(st, code)` when a dispatched INVITE gets its
final response, `ended(call_id, msg)` when a counted call ends (BYE, or expiry with msg None).
`CallLog.run` wakes FLUSH_SECONDS after the first tuple (not at all while none comes), turns
those tuples into stream entries (parsing users, attempts, one joined string each) and sends them
in one script call (lbcore.calls.FLUSH_LUA: XADDs trimmed by the table's call_log_max /
call_log_retention_s).

Memory has a cap both ways. The raw queue holds at most QUEUE_MAX tuples (it is emptied every
flush, Redis or not); encoded entries wait for Redis in `pending`, at most PENDING_MAX of them.
Past either cap the oldest go, counted in the node's `call_records_dropped` (heartbeat, panel),
and one warning line says so, at most once a minute.
"""

import asyncio
import collections
import logging
import time

from redis.exceptions import RedisError

from lbcore import calls
from proxy.background import raise_if_cancelled, sleep_unless_stopped
from proxy.slices import Slicer

log = logging.getLogger("proxy.calllog")

FLUSH_SECONDS = 0.1
QUEUE_MAX = 50_000  # raw tuples between two flushes: 100 ms of a 500,000 calls/s flood
PENDING_MAX = 50_000  # encoded entries waiting for Redis: about a minute at 800 calls/s
BATCH_MAX = 500  # entries per script call: packing the command is one uninterrupted piece of work
TRIM_EVERY_SECONDS = 1.0
WARN_EVERY_SECONDS = 60.0


class CallLog:
    def __init__(self, core, node_name):
        self.core = core
        self.node_name = node_name
        self.clock = core.loop.time
        self.on = True  # the table's call_log_max > 0
        self.queue = collections.deque()
        self.pending = collections.deque()
        self.dropped = 0
        self.written = 0
        self.stopped = asyncio.Event()
        self.wake = asyncio.Event()  # set when the queue gets its first record (and on stop)
        self._routes = (None, {})  # (view, ip -> (setid, why)) for the view the cache is for
        self._last_warn = None
        self._last_trim = 0.0
        self._script = None
        self._script_client = None

    # -- message path: one tuple, nothing else ---------------------------------

    def setup(self, st, code, now):
        """`now`: the loop's time of the final response."""
        if self.on:
            q = self.queue
            if not q:
                self.wake.set()
            elif len(q) >= QUEUE_MAX:
                q.popleft()
                self._lost(1)
            q.append((st, code, now))

    def ended(self, call_id, msg):
        if self.on:
            q = self.queue
            if not q:
                self.wake.set()
            elif len(q) >= QUEUE_MAX:
                q.popleft()
                self._lost(1)
            q.append((call_id, msg, time.time()))

    def _lost(self, n):
        self.dropped += n
        self.core.accounting.totals["call_records_dropped"] += n

    # -- encoding (off the message path) -----------------------------------------

    async def encode_queued(self):
        """Turn the raw tuples into stream entries, into `pending` (bounded), in slices
        (proxy/slices.py): a pile left by a slow spell must not hold the message path."""
        q, self.queue = self.queue, collections.deque()
        if not q:
            return
        loop_now, now = self.clock(), time.time()
        pending = self.pending
        failed = 0
        slicer = Slicer()
        for item in q:
            await slicer.tick()
            try:
                fields = self._encode(item, loop_now, now)
            except Exception:  # a bug, not Redis: one odd call must not stop the log, nor flood it
                if not failed:
                    log.exception("could not encode a call record; skipped")
                failed += 1
                self._lost(1)
                continue
            if len(pending) >= PENDING_MAX:
                pending.popleft()
                self._lost(1)
            pending.append(fields)

    def _encode(self, item, loop_now, now):
        first = item[0]
        if isinstance(first, bytes):
            call_id, msg, ended = item
            btag = getattr(msg, "from_tag", None) if msg is not None else None
            by = "" if msg is not None else calls.EXPIRED
            return calls.END, calls.encode_end(
                calls.clean(call_id, calls.CALL_ID_MAX), f"{ended:.3f}", calls.clean(btag, calls.TAG_MAX), by
            )
        return calls.SETUP, self._setup_data(item, loop_now, now)

    def _setup_data(self, item, loop_now, now):
        st, code, final_at = item
        req = st.req
        ip, port = st.addr[0], st.addr[1]
        setid, why = self._route(ip)
        if st.dset is not None:
            setid = st.dset.setid
        attempts = []
        for ct in st.branches:
            d = ct.dest
            if d is None:
                continue
            end = ct.ended if ct.ended is not None else final_at
            reason = ""
            if ct.code is None:
                reason = ct.why or ("cancelled" if st.canceled else ("no answer" if ct.state else "no reply"))
            ms = round((end - ct.sent_at) * 1000)
            attempts.append(calls.attempt(d.id, d.server_id, ct.code, ms, reason, d.uri))
        return calls.encode_setup(
            calls.clean(st.call_id, calls.CALL_ID_MAX),
            f"{now - (loop_now - st.created):.3f}",
            self.node_name,
            f"{ip}:{port}",
            calls.clean(st.carrier, calls.TEXT_MAX),
            "" if setid is None else setid,
            why,
            calls.user_part(req.uri_of(b"from")),
            calls.user_part(req.uri_of(b"to")),
            calls.clean(req.from_tag, calls.TAG_MAX),
            code,
            round((final_at - st.created) * 1000),
            "1" if st.canceled else "",
            calls.RS.join(attempts),
        )

    def _route(self, ip):
        """(set id, "rule <network>" or "default") for a source, as the table now in use decides."""
        view = self.core.view
        cached_view, cache = self._routes
        if cached_view is not view:
            cache = {}
            self._routes = (view, cache)
        hit = cache.get(ip)
        if hit is None:
            hit = (view.set_for(ip), view.why_for(ip))
            if len(cache) < 10_000:
                cache[ip] = hit
        return hit

    # -- the flusher -------------------------------------------------------------

    def apply_settings(self):
        ret, cap = calls.retention(self.core.view.settings)
        self.on = cap > 0
        return ret, cap

    async def flush(self, client):
        """Encode what is queued and send it; on a Redis error the entries stay pending."""
        retention_s, cap = self.apply_settings()
        await self.encode_queued()
        pending = self.pending
        if self._script is None or self._script_client is not client:
            self._script = client.register_script(calls.FLUSH_LUA)
            self._script_client = client
        while pending:
            batch = [pending[i] for i in range(min(BATCH_MAX, len(pending)))]
            now = time.time()
            trim = now - self._last_trim >= TRIM_EVERY_SECONDS
            args = [max(cap, 1), int((now - retention_s) * 1000) if trim else 0]
            for kind, doc in batch:
                args.append(kind)
                args.append(doc)
            await self._script(keys=[calls.CALL_LOG_KEY], args=args, client=client)
            if trim:
                self._last_trim = now
            for _ in batch:
                pending.popleft()
            self.written += len(batch)

    async def run(self, client_factory):
        client = None
        failing = False
        while not self.stopped.is_set():
            raise_if_cancelled()
            try:
                if client is None:
                    client = client_factory()
                await self.flush(client)
                if failing:
                    log.warning("call records written again (%d dropped since start)", self.dropped)
                failing = False
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._warn(exc)
                failing = True
                if client is not None:
                    await _close(client)
                client = None
            await self._pause()
        if client is not None:
            await _close(client)

    async def _pause(self):
        """Until the next flush: FLUSH_SECONDS while records wait (queued, or pending because Redis
        failed), else until the message path queues one and then FLUSH_SECONDS to gather the rest:
        a record still goes out within FLUSH_SECONDS of its call, and an idle proxy does not wake
        ten times a second for nothing."""
        raise_if_cancelled()  # a cancel redis-py ate in the flush: no sleep that only a record ends
        if not self.queue and not self.pending:
            self.wake.clear()
            await self.wake.wait()
        await sleep_unless_stopped(self.stopped, FLUSH_SECONDS)

    def _warn(self, exc):
        now = time.monotonic()
        if self._last_warn is None or now - self._last_warn >= WARN_EVERY_SECONDS:
            self._last_warn = now
            log.warning(
                "call records not written (%s): %d wait in memory (at most %d), %d dropped since start",
                exc,
                len(self.pending),
                PENDING_MAX,
                self.dropped,
            )

    def stop(self):
        self.stopped.set()
        self.wake.set()

    async def close(self, client_factory):
        """On a clean stop: send what is still queued (the caller bounds how long this may take)."""
        client = client_factory()
        try:
            await self.flush(client)
        except (RedisError, OSError) as exc:
            log.warning("could not write the last %d call records on stop: %s", len(self.pending), exc)
        finally:
            await _close(client)


async def _close(client):
    try:
        await asyncio.wait_for(client.aclose(), 1.0)
    except Exception as exc:  # noqa: BLE001 (dropped whatever it raises)
        log.debug("closing a redis client failed (it is dropped anyway): %r", exc)
