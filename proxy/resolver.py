"""Host names to addresses without ever blocking the event loop.

A Route or R-URI host comes from the wire. `socket.getaddrinfo` on the loop let one packet
naming a host behind a silent resolver freeze every call for the resolver's whole timeout,
and a thread pool only moves the stall (its threads fill up and cannot be cancelled). So
names go through c-ares (aiodns): its sockets are watched by the loop like ours, and its
own timeout ends a lookup. Answers are cached, failures too (a negative cache, so a bad name
costs one lookup per `fail_ttl`, not one per packet), lookups in flight are capped, and new
names asked for by untrusted sources are rate-limited.

IP literals never reach DNS: `literal()` reads every spelling the C library accepts
(`0x7f000001`, `2130706433`, `127.1`, `0177.0.0.1`, `::ffff:127.0.0.1`) the way the kernel
would send to it, so an alias of our own address is recognised as ours without a lookup.
"""

import ipaddress
import logging
import socket
import time

from proxy.background import Background

log = logging.getLogger("proxy.resolver")

# What a lookup may answer, by reason.
UNRESOLVABLE = "unresolvable"
BUSY = "busy"


def literal(host):
    """The canonical text of an IP literal in any spelling, else None (a name, or no host at all:
    `host` may come from anyone's Via, so any text gives an answer, never an exception)."""
    if not host:
        return None
    c = host[0]
    if c == "[" and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return None
        if ip.scope_id is not None:
            return None  # "fe80::1%eth0": ipaddress takes a zone of any characters, NUL included
        mapped = ip.ipv4_mapped
        return str(mapped) if mapped is not None else str(ip)
    if not "0" <= c <= "9":  # str.isdigit() is also true for "²"
        return None
    try:
        # inet_aton is the C library's reading (hex, octal, short forms), and it is what
        # getaddrinfo would have done with such a "name"
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, ValueError):  # ValueError: a NUL ("embedded null character"), or not ASCII
        return None


def address_is_here(host):
    """True when `host` is assigned to an interface of this machine, False when not, None when a
    bind cannot tell: a name, or loopback (every process on the host has all of 127/8 and ::1)."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if addr.is_loopback or addr.is_unspecified or _nonlocal_bind(addr.version):
        return None
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))  # succeeds only for an address of this host (no packet sent)
        except OSError:
            return False
    return True


def _nonlocal_bind(version):
    """net.ipv4.ip_nonlocal_bind=1 lets any address bind: then a bind tells nothing."""
    try:
        with open(f"/proc/sys/net/ipv{version}/ip_nonlocal_bind") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


class Resolver:
    """`resolve(host, untrusted, done)`: done(ip, None) or done(None, reason), now or later."""

    def __init__(
        self,
        loop,
        *,
        timeout=2.0,
        tries=1,
        nameservers=None,
        ok_ttl=300.0,
        fail_ttl=30.0,
        max_names=10000,
        max_pending=64,
        untrusted_per_second=10,
    ):
        self.loop = loop
        self.timeout = timeout
        self.tries = tries
        self.nameservers = list(nameservers) if nameservers else None
        self.ok_ttl = ok_ttl
        self.fail_ttl = fail_ttl
        self.max_names = max_names
        self.max_pending = max_pending
        self.untrusted_per_second = untrusted_per_second
        self.cache = {}  # host -> (ip or None, expires at)
        self.pending = {}  # host -> [done callbacks]
        self._dns = None
        self._window = 0.0
        self._untrusted_in_window = 0
        self.refused = 0
        self.lookups = Background(loop)

    def _client(self):
        if self._dns is None:
            import aiodns  # noqa: PLC0415 (imported where first needed: sip tests run without it)

            kw = {"loop": self.loop, "timeout": self.timeout, "tries": self.tries}
            if self.nameservers:
                kw["nameservers"] = self.nameservers
            self._dns = aiodns.DNSResolver(**kw)
        return self._dns

    def cached(self, host):
        """(True, ip-or-None) when known now, else (False, None)."""
        ip = literal(host)
        if ip is not None:
            return True, ip
        hit = self.cache.get(host)
        if hit is not None and hit[1] > time.monotonic():
            return True, hit[0]
        return False, None

    def resolve(self, host, untrusted, done):
        known, ip = self.cached(host)
        if known:
            done(ip, None if ip is not None else UNRESOLVABLE)
            return
        waiting = self.pending.get(host)
        if waiting is not None:
            waiting.append(done)
            return
        if len(self.pending) >= self.max_pending or (untrusted and not self._admit_untrusted()):
            self.refused += 1
            done(None, BUSY)
            return
        self.pending[host] = [done]
        self.lookups.start(self._lookup(host)).add_done_callback(_log_crash)

    def _admit_untrusted(self):
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._untrusted_in_window = now, 0
        if self._untrusted_in_window >= self.untrusted_per_second:
            return False
        self._untrusted_in_window += 1
        return True

    async def _lookup(self, host):
        ip = None
        try:
            result = await self._client().getaddrinfo(host, family=socket.AF_UNSPEC, type=socket.SOCK_DGRAM)
            addrs = [n.addr[0] for n in result.nodes]
            # IPv4 first: most SIP peers and our usual listeners are IPv4
            addrs.sort(key=lambda a: b":" in a if isinstance(a, bytes) else ":" in a)
            if addrs:
                ip = addrs[0].decode() if isinstance(addrs[0], bytes) else addrs[0]
        except Exception as exc:  # noqa: BLE001 (aiodns raises DNSError and, on a closed loop, others)
            log.warning("cannot resolve host=%s: %s", host, exc)
        if len(self.cache) >= self.max_names:
            self._evict()
        self.cache[host] = (ip, time.monotonic() + (self.ok_ttl if ip is not None else self.fail_ttl))
        for done in self.pending.pop(host, ()):
            try:
                done(ip, None if ip is not None else UNRESOLVABLE)
            except Exception:
                log.exception("resolver callback failed for host=%s", host)

    def _evict(self):
        now = time.monotonic()
        for host in [h for h, (_, exp) in self.cache.items() if exp <= now]:
            del self.cache[host]
        if len(self.cache) >= self.max_names:
            self.cache.clear()  # everything still fresh: a flood of names; start over

    def close(self):
        if self._dns is not None:
            try:
                self._dns.cancel()
            except Exception:
                log.exception("closing the resolver failed")
            self._dns = None


def _log_crash(task):
    if not task.cancelled() and task.exception() is not None:
        log.error("resolver task failed: %r", task.exception())
