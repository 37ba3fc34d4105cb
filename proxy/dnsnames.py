"""The table's destination host names, kept resolved (RFC 3263, lbcore.sipdns) off the message path.

A new table's names are looked up before it is applied (the follower awaits `follow`); after that
one background task looks each name up again at its TTL (bounded) and, when the addresses changed,
has the proxy build a new routing view from the same table (`on_change`), which it swaps in whole.
The message path only ever reads the applied view: nothing here runs while a request is handled.

A name that stops resolving (NXDOMAIN, SERVFAIL, timeout) keeps its last addresses and is tried
again every RETRY seconds; `warnings()` says so, per destination, for the heartbeat to publish
(lbcore.contract DNS_KEY_PREFIX), so the panel shows it on the server's row.

Memory: one entry per name in the applied table, each with at most sipdns.MAX_HOPS addresses;
names that leave the table are forgotten.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from lbcore import sipdns
from proxy.background import raise_if_cancelled

log = logging.getLogger("proxy.dns")

# One whole RFC 3263 lookup (NAPTR, SRV, then each target's A/AAAA): each query has its own timeout.
LOOKUP_DEADLINE = 3 * sipdns.LOOKUP_TIMEOUT
# How long a new table waits for its new names before it is applied anyway: a slow name server must
# not hold up a maintenance change. A name found later is routed to when it is (on_change).
FOLLOW_WAIT = 1.0


@dataclass
class Entry:
    located: sipdns.Located | None = None  # the last good answer
    due: float = 0.0  # loop time of the next lookup
    failing: str = ""  # why the last lookup failed; "" when it answered
    failing_since: float | None = None  # epoch of the first failure in a row


class DestinationNames:
    def __init__(self, loop, resolver=None, bounds=None):
        self.loop = loop
        self._resolver = resolver
        self.bounds = bounds or sipdns.ttl_bounds()
        self.entries = {}  # sipdns.Name -> Entry
        self.by_uri = {}  # destination URI -> sipdns.Name, or None for an IP literal
        self.on_change = None  # called with no arguments when a name's addresses changed
        self.wake = asyncio.Event()
        self.lookups = 0
        self.late = set()  # first lookups still running after their table was applied

    @property
    def resolver(self):
        if self._resolver is None:
            self._resolver = sipdns.make_resolver()
        return self._resolver

    def name_of(self, uri):
        try:
            return self.by_uri[uri]
        except KeyError:
            pass
        try:
            name = sipdns.Name.of(uri)
        except ValueError as exc:  # SipSyntaxError: the panel refuses such a URI; one written by hand
            log.error("destination uri=%s cannot be parsed (%s): not resolved", uri, exc)
            name = None
        self.by_uri[uri] = name
        return name

    def hops(self, dest):
        """The addresses of a destination named by host name, best first; None when it has none yet
        (or is an IP literal, which needs none)."""
        name = self.name_of(dest.uri)
        entry = self.entries.get(name) if name is not None else None
        return entry.located.hops if entry is not None and entry.located is not None else None

    async def follow(self, table):
        """Make the names of `table` the ones kept, and look up the new ones now (bounded)."""
        uris = {d.uri for dset in table.sets.values() for d in dset.destinations}
        self.by_uri = {u: n for u, n in self.by_uri.items() if u in uris}
        wanted = {n for n in (self.name_of(u) for u in uris) if n is not None}
        for name in set(self.entries) - wanted:
            del self.entries[name]
        new = [n for n in wanted if n not in self.entries]
        for name in new:
            self.entries[name] = Entry()
        if new:
            tasks = {self.loop.create_task(self._refresh(n)): n for n in new}
            _, late = await asyncio.wait(tasks, timeout=FOLLOW_WAIT)
            for task in late:
                log.warning(
                    "DNS name=%s: no answer within %gs; table applied without it, used once it answers", tasks[task], FOLLOW_WAIT
                )
                self.late.add(task)
                task.add_done_callback(self._late_done)
        self.wake.set()

    def _late_done(self, task):
        self.late.discard(task)
        if not task.cancelled() and task.exception() is None and task.result():
            self._changed()

    def _changed(self):
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:
            log.exception("routing with new DNS addresses failed; the previous view stays")

    async def run(self, stopped):
        """Look names up again as they fall due, until `stopped` is set."""
        while not stopped.is_set():
            raise_if_cancelled()  # asyncio.wait_for on 3.11 eats a cancel that lands as a wake-up completes
            now = self.loop.time()
            due = [n for n, e in self.entries.items() if e.due <= now]
            if due:
                results = await asyncio.gather(*(self._refresh(n) for n in due))
                if any(results):
                    self._changed()
                continue
            wait = min(min((e.due for e in self.entries.values()), default=now + self.bounds[1]) - now, self.bounds[1])
            self.wake.clear()
            try:
                await asyncio.wait_for(_first(self.wake, stopped), max(wait, 0.01))
            except TimeoutError:
                pass

    async def _refresh(self, name):
        """One lookup of `name`; True when its addresses changed."""
        entry = self.entries.get(name)
        if entry is None:
            return False
        entry.due = float("inf")  # in flight: run() does not start another
        self.lookups += 1
        try:
            located = await asyncio.wait_for(sipdns.locate(self.resolver, name), LOOKUP_DEADLINE)
        except sipdns.LookupFailed as exc:
            return self._failed(name, entry, exc.why)
        except TimeoutError:
            return self._failed(name, entry, "timeout")
        except Exception as exc:
            why = f"lookup error {type(exc).__name__}"
            if entry.failing != why:  # once per failure in a row, not every RETRY
                log.exception("DNS lookup of name=%s crashed", name)
            return self._failed(name, entry, why)
        if self.entries.get(name) is not entry:
            return False  # left the table while we waited
        old = entry.located
        entry.located = located
        entry.due = self.loop.time() + sipdns.refresh_in(located, self.bounds)
        if entry.failing:
            log.warning("DNS name=%s resolves again (after %s): %s", name, entry.failing, _hops_text(located.hops))
        elif old is None or old.hops != located.hops:
            was = f" (was {_hops_text(old.hops)})" if old is not None else ""
            log.info("DNS name=%s via %s -> %s ttl=%gs%s", name, located.via, _hops_text(located.hops), located.ttl, was)
        if located.missing and (old is None or old.missing != located.missing):
            log.warning("DNS name=%s: SRV targets without an address, left out: %s", name, ", ".join(located.missing))
        entry.failing, entry.failing_since = "", None
        return old is None or old.hops != located.hops

    def _failed(self, name, entry, why):
        if self.entries.get(name) is not entry:
            return False
        entry.due = self.loop.time() + sipdns.RETRY
        if entry.failing != why and entry.located is None:
            log.warning("DNS name=%s does not resolve (%s); its destinations are not used until it does", name, why)
        elif entry.failing != why:
            log.warning("DNS name=%s stopped resolving (%s); using last known %s", name, why, _hops_text(entry.located.hops))
        if not entry.failing:
            entry.failing_since = time.time()
        entry.failing = why
        return False

    def warnings(self, table):
        """destination id -> {"name", "why", "since", "using"} for each destination whose name is failing."""
        out = {}
        for dset in table.sets.values():
            for d in dset.destinations:
                name = self.name_of(d.uri)
                entry = self.entries.get(name) if name is not None else None
                if entry is None or not entry.failing:
                    continue
                hops = entry.located.hops if entry.located is not None else ()
                out[d.id] = {
                    "name": str(name),
                    "why": entry.failing,
                    "since": entry.failing_since,
                    "using": [str(h) for h in hops],
                }
        return out


async def _first(*events):
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def _hops_text(hops):
    return ",".join(str(h) for h in hops) or "-"
