"""The prober's DNS answers (RFC 3263, lbcore.sipdns, as the proxy's): kept for their TTL (bounded as
the proxy bounds it) in the worker process, and the last good one kept when a name stops resolving,
so a probe goes where the proxy sends calls. At most MAX_NAMES names are kept.
"""

import asyncio
import ipaddress
import logging
import time

from lbcore import sipdns

log = logging.getLogger(__name__)

MAX_NAMES = 10000

_known = {}  # sipdns.Name -> (Located, monotonic time it is looked up again)


async def locate(uri, host, port, transport, timeout):
    """The addresses a destination's URI leads to (sipdns.Hop, best first), or why none (a str)."""
    try:
        name = sipdns.Name.of(uri)
    except ValueError as exc:
        return f"bad URI: {exc}"
    if name is None:
        return (sipdns.Hop(transport, str(ipaddress.ip_address(host.strip("[]"))), port),)
    known = _known.get(name)
    if known is not None and known[1] > time.monotonic():
        return known[0].hops
    try:
        resolver = sipdns.make_resolver(timeout=timeout)
        located = await asyncio.wait_for(sipdns.locate(resolver, name), 3 * timeout)
    except (sipdns.LookupFailed, TimeoutError) as exc:
        why = exc.why if isinstance(exc, sipdns.LookupFailed) else "timeout"
        if known is None:
            log.warning("probe cannot resolve name=%s: %s", name, why)
            return why
        log.warning("probe name=%s stopped resolving (%s); probing last known %s", name, why, ",".join(map(str, known[0].hops)))
        return known[0].hops
    if len(_known) >= MAX_NAMES:
        _known.clear()
    _known[name] = (located, time.monotonic() + sipdns.refresh_in(located, sipdns.ttl_bounds()))
    return located.hops


def forget():
    """Drop every kept answer (tests; a worker never needs to)."""
    _known.clear()


def expire():
    """Every kept answer due for a new lookup, as if its TTL had passed (tests)."""
    for name, (located, _) in list(_known.items()):
        _known[name] = (located, 0.0)
