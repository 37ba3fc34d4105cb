"""Keep the proxy's table and health current from Redis, and write what the proxy knows.

Subscribe first, then load `lb:table` and `lb:health` in full, so no event can fall
between the load and the subscription. On any Redis error: keep routing from the last
table, retry with backoff, and reload in full on reconnect (events may have been missed).
Writes: suspect marks (HSET lb:health + PUBLISH) and the node heartbeat every second,
which also brings back the other nodes' active calls for algorithm 10.
"""

import asyncio
import logging
import os
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from lbcore.contract import (
    DNS_KEEP_SECONDS,
    EVENTS_CHANNEL,
    HEALTH_KEY,
    NODE_CARRIERS_TTL_SECONDS,
    NODE_KEY_PREFIX,
    NODE_TTL_SECONDS,
    TABLE_KEY,
    decode_event,
    decode_health,
    decode_node,
    decode_node_carriers,
    decode_table,
    decode_vrrp,
    dns_key,
    encode_dns_warning,
    encode_health,
    encode_node,
    encode_node_carriers,
    health_event,
    node_carriers_key,
    node_key,
    vrrp_key,
)
from lbcore.redistarget import RedisTarget
from proxy.background import Background, raise_if_cancelled, sleep_unless_stopped
from proxy.load import LoadMeter
from proxy.resolver import address_is_here

log = logging.getLogger("proxy.follower")

BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0


class Follower:
    def __init__(self, core, url, node_name, listen, advertise=None):
        self.core = core
        self.target = RedisTarget.of(url)  # a URL, or the Sentinel master
        self.node_name = node_name
        self.listen = listen
        self.advertise = advertise  # (host, port or None)
        self.started = time.time()
        self.load = LoadMeter()
        self.reader_load = None  # a worker behind --steering reader: that process's meter (proxy.server)
        self.previous = None  # {"started", "written"} of the process before us under this name; {} if none
        self.client = None
        self.connected = False
        self.first_attempt = asyncio.Event()
        self.stopped = asyncio.Event()
        self._warned = False
        self._dns_written = True  # unknown until our first heartbeat rewrites lb:dnsfail:<us>
        self.writes = Background()  # suspect marks on their way to Redis

    def stop(self):
        """Ask both loops to end (a cancel alone can be eaten inside redis-py)."""
        self.stopped.set()

    async def _pause(self, seconds):
        await sleep_unless_stopped(self.stopped, seconds)

    def _client(self):
        return redis_client(self.target, self.node_name)

    async def run(self):
        backoff = BACKOFF_MIN
        while not self.stopped.is_set():
            raise_if_cancelled()
            client = self._client()
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(EVENTS_CHANNEL)
                await self.reload(client)
                self.client = client
                self.connected = True
                if self._warned:
                    log.warning("redis is back: table version %s reloaded", self.core.view.version)
                self._warned = False
                backoff = BACKOFF_MIN
                self.first_attempt.set()
                await self._listen(client, pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ValueError) as exc:
                raise_if_cancelled()
                if not self._warned:
                    log.warning("redis unavailable (%s): routing from table version %s, retrying", exc, self.core.view.version)
                    self._warned = True
            finally:
                self.connected = False
                self.client = None
                await _close(pubsub, client)
            self.first_attempt.set()
            await self._pause(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _listen(self, client, pubsub):
        while not self.stopped.is_set():
            raise_if_cancelled()
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            event = decode_event(message["data"])
            if event is None:
                continue
            if event[0] == "table":
                # always look: a flushed Redis can publish a version number we already have
                await self.load_table(client, only_if_newer=True)
            else:
                # Redis pub/sub ignores the db number: an event may come from another
                # deployment on the same server. Our own db's hash is the truth.
                dest_id = event[1]
                raw = await client.hget(HEALTH_KEY, str(dest_id))
                if raw is not None:
                    self.core.set_health(dest_id, decode_health(raw))

    async def reload(self, client):
        await self.load_table(client)
        raw = await client.hgetall(HEALTH_KEY)
        health = {}
        for k, v in raw.items():
            try:
                health[int(k)] = decode_health(v)
            except (ValueError, TypeError):
                log.warning("ignoring bad health entry %r", k)
        self.core.health = health

    async def load_table(self, client, only_if_newer=False):
        raw = await client.get(TABLE_KEY)
        if raw is None:
            return
        try:
            table = decode_table(raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring undecodable %s: %s", TABLE_KEY, exc)
            return
        current = self.core.view.table
        if only_if_newer and (table.version, table.published_at) == (current.version, current.published_at):
            return  # same table (a flushed Redis can reuse a version number: compare the stamp too)
        await self.core.names.follow(table)  # new host names resolved before the table is used
        self.core.apply_table(table)

    # -- writes ----------------------------------------------------------------

    def publish_suspect(self, dest, health):
        client = self.client
        if client is None:
            return
        self.writes.start(self._publish_suspect(client, dest.id, health))

    async def _publish_suspect(self, client, dest_id, health):
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(HEALTH_KEY, str(dest_id), encode_health(health))
                pipe.publish(EVENTS_CHANNEL, health_event(dest_id))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not write suspect mark of destination %s: %s", dest_id, exc)

    async def heartbeat(self):
        """Every second: our counters to lb:node:<name>, the others' active calls back. The calls
        themselves are in lb:dialogs:<name> (proxy.dialogs)."""
        client = None
        failing = False
        key = node_key(self.node_name)
        while not self.stopped.is_set():
            raise_if_cancelled()
            try:
                if client is None:
                    client = self._client()
                accounting = self.core.accounting
                totals, dests = accounting.snapshot()
                carriers = self.core.carriers.snapshot(self.core.loop.time())
                holds = await self._holds_address(client)
                load = self._load()
                doc = encode_node(
                    self.node_name,
                    table_version=self.core.view.version,
                    started=self.started,
                    pid=os.getpid(),
                    listen=self.listen,
                    totals=totals,
                    destinations=dests,
                    table_published_at=self.core.view.table.published_at or None,
                    table_applied_at=self.core.table_applied_at,
                    advertise=self._advertise_text(),
                    holds_address=holds,
                    carriers=carriers,
                    steering=self.core.steering,
                    load=load,
                )
                pipe = client.pipeline(transaction=False)
                pipe.set(key, doc, ex=NODE_TTL_SECONDS)
                if self.previous is None:
                    self.previous = await self._previous_process(client)
                record = encode_node_carriers(
                    self.node_name, started=self.started, carriers=carriers, previous=self.previous or None
                )
                pipe.set(node_carriers_key(self.node_name), record, ex=NODE_CARRIERS_TTL_SECONDS)
                await pipe.execute()
                await self._write_dns_warnings(client)
                remote = {}
                keys = [k async for k in client.scan_iter(match=NODE_KEY_PREFIX + "*", count=100)]
                keys = [k for k in keys if k != key.encode()]
                if keys:
                    for raw in await client.mget(keys):
                        if raw is None:
                            continue
                        try:
                            node = decode_node(raw)
                        except (ValueError, TypeError):
                            continue
                        for did, c in node.get("destinations", {}).items():
                            remote[did] = remote.get(did, 0) + int(c.get("active", 0) or 0)
                        for did, n in node["unknown"].items():
                            remote[did] = remote.get(did, 0) + n
                self.core.accounting.remote_active = remote
                failing = False
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                if not failing:
                    log.warning("heartbeat to redis failed: %s", exc)
                failing = True
                if client is not None:
                    await _close(client)
                client = None
            await self._pause(1.0)
        if client is not None:
            await _close(client)

    async def _previous_process(self, client):
        """Before our first carrier record replaces it: when the process we replace started and last
        wrote, so the panel can say its counts are gone rather than show ours as all there was."""
        raw = await client.get(node_carriers_key(self.node_name))
        old = decode_node_carriers(raw) if raw is not None else None
        if old is None or old["started"] == self.started:
            return {}
        return {"started": old["started"], "written": old["written"]}

    async def _write_dns_warnings(self, client):
        """The destinations whose host names fail here, in lb:dnsfail:<us>, rewritten whole. Nothing is
        sent while nothing fails and nothing did (the first write also clears what our predecessor left)."""
        warnings = self.core.names.warnings(self.core.view.table)
        if not warnings and not self._dns_written:
            return
        key = dns_key(self.node_name)
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if warnings:
                pipe.hset(key, mapping={str(d): encode_dns_warning(self.node_name, **w) for d, w in warnings.items()})
                pipe.expire(key, DNS_KEEP_SECONDS)
            await pipe.execute()
        self._dns_written = bool(warnings)

    def _advertise_text(self):
        if self.advertise is None:
            return None
        host, port = self.advertise
        lis = self.core.listeners[0] if self.core.listeners else None
        port = port or (lis.port if lis is not None else 5060)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _load(self):
        load = self.load.sample(self.core.overload.take_worst())
        if self.reader_load is not None:
            reader = self.reader_load.sample(0.0)
            if load is not None:
                load["reader_cpu"] = reader["cpu"] if reader is not None else None
        return load

    async def _holds_address(self, client):
        """Is the floating address (the advertised one, else the one we listen on) on this node?
        The interfaces say so when it is an IP literal off loopback and binds prove something;
        else keepalived's last report (proxy_check --report), e.g. for a node bound to the floating
        address under ip_nonlocal_bind; else None."""
        lis = self.core.listeners[0] if self.core.listeners else None
        host = self.advertise[0] if self.advertise is not None else (lis.host if lis is not None else "")
        held = address_is_here(host)
        if held is not None:
            return held
        raw = await client.get(vrrp_key(self.node_name))
        if raw is None:
            return None
        try:
            return decode_vrrp(raw)["holds"]
        except (ValueError, TypeError, AttributeError):
            return None

    async def remove_node(self):
        """On a clean stop: remove the heartbeat and our DNS failures (nobody is left to vouch for
        them, and a stop is no crash to explain). The calls we carry stay in lb:dialogs:<name>."""
        client = self._client()
        try:
            await client.delete(node_key(self.node_name), dns_key(self.node_name))
        except (RedisError, OSError) as exc:
            # the key's TTL removes this node from the panel a few seconds later anyway
            log.warning("could not remove %s on stop: %s", node_key(self.node_name), exc)
        finally:
            await client.aclose()


class SentinelMaster(aioredis.Redis):
    """The master's client; closing it also closes the connections to the sentinels that named it."""

    sentinel = None

    async def aclose(self, close_connection_pool=None):
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.sentinel is not None:
                await self.sentinel.aclose()


def redis_client(target, node_name):
    """The proxy's Redis client: REDIS_URL's server, or the master the sentinels name when it connects.

    No retries inside redis-py: a pub/sub it reconnected by itself would resubscribe silently, and
    the events missed meanwhile would never be reloaded. The follower's loops retry instead, and
    reload in full (after a Sentinel failover, from the new master, which a new client looks up).
    """
    options = {
        "socket_connect_timeout": 1.0,
        "socket_timeout": 5.0,
        "health_check_interval": 10,
        "retry": Retry(NoBackoff(), 0),
        # named so operators (and tests) can tell this proxy's connections apart in CLIENT LIST
        "client_name": f"lbpanel-proxy:{node_name}",
    }
    if not target.sentinels:
        return aioredis.from_url(target.url, **options)
    sentinel_options = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "password": target.sentinel_password}
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=sentinel_options)
    client = sentinel.master_for(target.master, redis_class=SentinelMaster, **options, **target.master_options())
    client.sentinel = sentinel
    return client


async def _close(*things):
    """Close redis clients without letting a stuck close hold up reconnecting or stopping."""
    for thing in things:
        try:
            await asyncio.wait_for(thing.aclose(), 1.0)
        except Exception as exc:  # noqa: BLE001 (shutting down: whatever the client raises, it is dropped)
            log.debug("closing a redis client failed (it is dropped anyway): %r", exc)
