"""A destination's DNS addresses on the message path: their order for one call, and which failed.

`proxy.dnsnames` keeps the names resolved; the routing view holds each destination's addresses
(`TableView.hops_of`, only for a name with several, or another transport). For each new call the
router asks `order()`: RFC 2782's weighted draw within the best SRV priority, then the next
priorities, with addresses that failed lately last. When one fails (ICMP, timeout, a failover
code) and others remain, `failed()` notes it instead of marking the destination suspect: its other
addresses answer. At most MAX_DOWN addresses are remembered.
"""

import logging

from lbcore.sipdns import weighted_order

log = logging.getLogger("proxy")

MAX_DOWN = 10000


class DnsHops:
    def __init__(self, core):
        self.core = core
        self.down = {}  # (transport, ip, port) -> loop time until which it goes last

    def order(self, hops):
        """A destination's addresses for one call, best first."""
        order = weighted_order(hops)
        down = self.down
        if down:
            now = self.core.loop.time()
            order.sort(key=lambda h: down.get((h.transport, h.ip, h.port), 0) > now)
        return order

    def failed(self, ct, why):
        """The address of branch `ct` failed and the call goes on to the destination's next one;
        this one goes last for suspect_hold."""
        if len(self.down) >= MAX_DOWN:
            self.down.clear()
        core = self.core
        self.down[(ct.proto, ct.addr[0], ct.addr[1])] = core.loop.time() + core.view.suspect_hold
        log.warning(
            "destination %s (%s): address %s:%s failed (%s), trying its next one",
            ct.dest.id,
            ct.dest.uri,
            ct.addr[0],
            ct.addr[1],
            why,
        )

    def not_local(self, table):
        """destination id -> its DNS addresses without this proxy's own (a call sent there would come
        back to us), for each destination whose name has resolved."""
        core = self.core
        out = {}
        for dset in table.sets.values():
            for d in dset.destinations:
                hops = core.names.hops(d)
                if not hops:
                    continue
                kept = tuple(h for h in hops if not core.is_local(h.ip, h.port))
                if len(kept) < len(hops):
                    names = ",".join(map(str, hops))
                    log.error("destination %s (%s): DNS names this proxy's own address among %s; not used", d.id, d.uri, names)
                if kept:
                    out[d.id] = kept
        return out
