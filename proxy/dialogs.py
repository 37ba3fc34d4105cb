"""The calls this node carries, kept in Redis as they change, and the calls of dead nodes taken over.

Nothing here runs on the message path: proxy.accounting queues each answered call and each end
in memory, and `DialogStore.run` flushes the queue DIALOG_FLUSH_SECONDS after its first change
as one script call (lbcore.contract.DIALOGS_FLUSH_LUA). Once a second it also looks for nodes
whose heartbeat has expired and moves their records into ours (DIALOGS_CLAIM_LUA), counting them
from then on, so a dead node's calls are neither dropped from the counts nor left to drift
(Kamailio #2322, OpenSIPS #2102). At start it counts the records its previous process (same node
name) left.

With Redis away the queue waits in memory and goes out whole when Redis is back: adds are
HSETNX and removals find-and-delete, so sending a batch twice changes nothing. A Redis that comes
back without our hashes (restarted empty, flushed, a replica that lacked them) is told apart by the
flush script, which then writes nothing: the store keeps every record it wrote or took over, and
writes them all again before the "~" stamp says its hash is whole.
"""

import asyncio
import logging
import time

from redis.exceptions import RedisError

from lbcore.contract import (
    DIALOG_COUNTS_KEY_PREFIX,
    DIALOG_FLUSH_SECONDS,
    DIALOGS_CLAIM_LUA,
    DIALOGS_FLUSH_LUA,
    decode_dialog,
    dialog_counts_key,
    dialogs_key,
    encode_dialog,
    node_key,
)
from proxy.background import raise_if_cancelled, sleep_unless_stopped
from proxy.slices import Slicer

HMGET_BATCH = 500  # adopted calls looked up per command

log = logging.getLogger("proxy.dialogs")

CLAIM_EVERY_SECONDS = 1.0  # how often dead nodes' records are looked for (and the "~" stamp renewed)
# uvloop counts timers in whole milliseconds and may wake a hair before the claim is due: without
# this slack the store found it not due, asked to sleep the sub-millisecond rest (0: at once) and
# spun until the millisecond turned, a burst of empty flushes (25 in 2.2 s once, under load)
CLAIM_EARLY_S = 0.005


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


class DialogStore:
    def __init__(self, core, node_name, client_factory, siblings=()):
        self.core = core
        self.node_name = node_name
        # the other workers of this proxy (--processes): a BYE one of them relays may close a record
        # in ours, which is no call taken over (the heartbeats' `adopted` would count it twice)
        self.siblings = frozenset(siblings)
        self.client_factory = client_factory  # the follower's: same server, Sentinel and options
        self.others = []  # names of the other nodes whose lb:dialogcounts exists (last look)
        self.stopped = asyncio.Event()
        self.loaded = False
        self.last_flush = 0.0
        self.wrote = False  # a flush of ours succeeded: our counts hash must exist from then on
        self.records = {}  # call-id -> encoded record of every call in our hash: what a lost hash is rebuilt from
        core.accounting.recording = True

    def stop(self):
        self.stopped.set()
        self.core.accounting.record_wake.set()

    @property
    def _ttl(self):
        # a record outlives dialog_timeout only if nobody flushes: then it goes with its call
        return int(self.core.view.dialog_timeout) + 60

    async def run(self):
        client = None
        failing = False
        last_claim = 0.0
        while not self.stopped.is_set():
            raise_if_cancelled()
            try:
                if client is None:
                    client = self.client_factory()
                    self._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
                    self._claim_script = client.register_script(DIALOGS_CLAIM_LUA)
                if not self.loaded:
                    await self._load_own(client)
                    self.loaded = True
                now = time.monotonic()
                claimed = now - last_claim >= CLAIM_EVERY_SECONDS - CLAIM_EARLY_S
                if claimed:
                    await self._claim_dead(client)
                    await self._forget_closed_elsewhere(client)
                    last_claim = now
                await self.flush(client, force=claimed)  # with the claims, the "~" stamp and TTLs too
                if failing:
                    log.warning("dialog records written again")
                failing = False
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not failing:
                    acc = self.core.accounting
                    log.warning(
                        "dialog records not written (%s): %d new and %d ended calls wait in memory",
                        exc,
                        len(acc.record_adds),
                        len(acc.record_removals),
                    )
                failing = True
                if client is not None:
                    await _close(client)
                client = None
            await self._pause(failing, CLAIM_EVERY_SECONDS - (time.monotonic() - last_claim))
        if client is not None:
            await _close(client)

    async def _pause(self, failing, until_claim):
        """Until the next flush: DIALOG_FLUSH_SECONDS while changes wait (or Redis failed), else
        until the message path makes one (then DIALOG_FLUSH_SECONDS to gather the rest) or the next
        claim is due: a record still goes out within DIALOG_FLUSH_SECONDS of its call, and an idle
        proxy wakes once a second for the claims, not ten times."""
        raise_if_cancelled()  # a cancel redis-py ate in the flush: no sleep that only a record ends
        acc = self.core.accounting
        if not (acc.record_adds or acc.record_removals or failing) and until_claim > 0:
            acc.record_wake.clear()
            try:
                await asyncio.wait_for(acc.record_wake.wait(), until_claim)
            except TimeoutError:
                return  # the claim is due: the loop runs it (and renews the stamp) at once
        await sleep_unless_stopped(self.stopped, DIALOG_FLUSH_SECONDS)

    async def flush(self, client, force=False):
        """Send what changed since the last flush (and, once a second, the "~" stamp)."""
        acc = self.core.accounting
        adds, removals = acc.record_adds, acc.record_removals
        now = time.time()
        if not adds and not removals and not force and now - self.last_flush < CLAIM_EVERY_SECONDS:
            return
        acc.record_adds, acc.record_removals = {}, []
        try:
            encoded = await self._encode(adds)
            elsewhere = await self._send(client, now, encoded, removals, expect=self.wrote)
            if elsewhere == 0:  # Redis lost our hash: everything we carry, then the stamp
                kept = {c: r for c, r in self.records.items() if c in acc.dialogs and c not in encoded}
                log.warning(
                    "Redis lost this node's dialog records (restarted empty, flushed, or expired while away): "
                    "writing the %d calls it carries again",
                    len(kept) + len(encoded),
                )
                elsewhere = await self._send(client, now, {**kept, **encoded}, removals, expect=False)
        except BaseException:
            # not sent, or not known to be: put the batch back in front (sending it twice is harmless)
            adds.update(acc.record_adds)
            acc.record_adds = adds
            acc.record_removals = removals + acc.record_removals
            raise
        self.wrote = True
        self.last_flush = now
        self.records.update(encoded)
        for call_id in removals:
            self.records.pop(call_id, None)
        if elsewhere:
            acc.totals["adopted"] += len(elsewhere)

    async def _encode(self, adds):
        """call-id -> (destination id, record) for the answered calls queued."""
        node = self.node_name
        slicer = Slicer()  # a pile left by a slow spell must not hold the message path
        out = {}
        for call_id, (dest, req, resp, start) in adds.items():
            await slicer.tick()
            to_tag = resp.to_tag if resp is not None else None
            out[call_id] = (
                dest.id,
                encode_dialog(dest.id, dest.server_id, dest.setid, _text(req.from_tag), _text(to_tag), node, start),
            )
        return out

    async def _send(self, client, now, encoded, removals, expect):
        args = [self._ttl, round(now, 3), 1 if expect else 0, len(encoded)]
        slicer = Slicer()
        for call_id, (dest_id, record) in encoded.items():
            await slicer.tick()
            args.append(call_id)
            args.append(dest_id)
            args.append(record)
        args.append(len(removals))
        args.extend(removals)
        node = self.node_name
        keys = [dialogs_key(node), dialog_counts_key(node)]
        if removals:
            others = sorted(self.others, key=lambda name: name in self.siblings)  # siblings last
            for other in others:
                keys.append(dialogs_key(other))
                keys.append(dialog_counts_key(other))
            args.append(len(keys) - 2 * sum(1 for name in others if name in self.siblings))
        return await self._flush_script(keys=keys, args=args, client=client)

    async def _load_own(self, client):
        """Count what our previous process (same node name) left in lb:dialogs:<us>."""
        raw = await client.hgetall(dialogs_key(self.node_name))
        taken = self.core.accounting.adopt(_decode_all(raw.items()))
        self._keep(raw.items())
        if taken:
            log.warning("counting %d calls our previous process left up (lb:dialogs:%s)", taken, self.node_name)

    async def _forget_closed_elsewhere(self, client):
        """Adopted calls whose record left our hash: whoever relayed the BYE closed it there (a
        sibling worker, the Call-ID's, under --processes). Uncounted here too, or this process's
        heartbeat would keep them until dialog_timeout. Once a second, only while any is counted."""
        acc = self.core.accounting
        ids = acc.adopted_ids()
        key = dialogs_key(self.node_name)
        for start in range(0, len(ids), HMGET_BATCH):
            chunk = ids[start : start + HMGET_BATCH]
            for call_id, rec in zip(chunk, await client.hmget(key, chunk), strict=True):
                if rec is None:
                    acc.closed_elsewhere(call_id)
                    self.records.pop(call_id, None)

    async def _claim_dead(self, client):
        """Take over the records of every node whose heartbeat has expired."""
        others = []
        async for key in client.scan_iter(match=DIALOG_COUNTS_KEY_PREFIX + "*", count=100):
            name = _text(key)[len(DIALOG_COUNTS_KEY_PREFIX) :]
            if name != self.node_name:
                others.append(name)
        self.others = others
        me = self.node_name
        for name in others:
            keys = [node_key(name), dialogs_key(name), dialog_counts_key(name), dialogs_key(me), dialog_counts_key(me)]
            raw = await self._claim_script(keys=keys, args=[self._ttl], client=client)
            if not raw:
                continue  # alive, or another node claimed them first
            pairs = list(zip(raw[0::2], raw[1::2], strict=True))
            taken = self.core.accounting.adopt(_decode_all(pairs))
            self._keep(pairs)
            self.core.accounting.totals["adopted"] += taken
            log.warning("node %s stopped reporting: took over its %d calls up", name, taken)

    def _keep(self, pairs):
        """Remember the records now in our hash that we count (taken over, or our predecessor's)."""
        dialogs = self.core.accounting.dialogs
        for call_id, raw in pairs:
            key = call_id if isinstance(call_id, bytes) else call_id.encode()
            if key in dialogs:
                self.records[key] = (dialogs[key], raw)

    async def close(self):
        """On a clean stop: send what is still queued. The records stay: the calls are still up on
        the servers, and our successor (same name) or another node takes them over."""
        client = self.client_factory()
        try:
            self._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
            await self.flush(client, force=True)
        except (RedisError, OSError) as exc:
            acc = self.core.accounting
            log.warning(
                "could not write the last dialog records on stop (%d new, %d ended): %s",
                len(acc.record_adds),
                len(acc.record_removals),
                exc,
            )
        finally:
            await _close(client)


def _decode_all(pairs):
    out = []
    for call_id, raw in pairs:
        try:
            out.append(decode_dialog(call_id, raw))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring undecodable dialog record %r: %s", call_id, exc)
    return out


async def _close(client):
    try:
        await asyncio.wait_for(client.aclose(), 1.0)
    except Exception as exc:  # noqa: BLE001 (dropped whatever it raises)
        log.debug("closing a redis client failed (it is dropped anyway): %r", exc)
