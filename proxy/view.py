"""The applied routing table, with what the hot path needs precomputed.

Built once per table version (off the hot path): source rules sorted for longest
match, trusted networks parsed, destinations indexed by address. Per-source answers
are cached, so a request pays a dict lookup, not an ipaddress parse.
"""

import hashlib
import ipaddress
import logging
import os

from lbcore.contract import EMPTY_TABLE, OTHER_CARRIER, setting
from proxy.resolver import literal

_CACHE_MAX = 10000

log = logging.getLogger("proxy")

# Signs our Record-Route while no table has brought the cluster's secret: dialogs then
# outlive neither this process nor a hop to another node, so the table's secret matters.
_PROCESS_SECRET = os.urandom(32)


def _net(text):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


class TableView:
    def __init__(self, table=EMPTY_TABLE, resolved=None, located=None):
        self.table = table
        self.version = table.version
        s = table.settings
        self.settings = s
        self.fr_timer = float(setting(s, "fr_timer_ms")) / 1000
        self.fr_inv_timer = float(setting(s, "fr_inv_timer_ms")) / 1000
        self.trying_timeout = float(setting(s, "trying_timeout_ms")) / 1000
        self.suspect_hold = float(setting(s, "suspect_hold_ms")) / 1000
        self.max_pending = int(setting(s, "max_pending_invites"))
        self.server = table.server_header
        self.dialog_timeout = float(setting(s, "dialog_timeout_s"))
        self.overload_lag = float(setting(s, "overload_lag_ms")) / 1000
        self.retry_after = (b"Retry-After: %d" % int(setting(s, "retry_after_s")),)
        self.max_transactions = int(setting(s, "max_transactions"))
        self.max_per_source = int(setting(s, "max_transactions_per_source"))
        secret = s.get("dialog_secret")
        self.secret = hashlib.sha256(secret.encode()).digest() if secret else _PROCESS_SECRET
        rules = []
        for r in table.source_rules:
            net = _net(r.network)
            if net is not None:
                rules.append((net, r.setid, r.carrier or r.network))
        rules.sort(key=lambda r: r[0].prefixlen, reverse=True)
        self.rules = rules
        self.trusted = [n for n in (_net(t) for t in s.get("trusted_networks") or ()) if n is not None]
        default = s.get("default_set")
        if default is None and table.sets:
            default = min(table.sets)
        self.default_set = int(default) if default is not None else None
        resolved = resolved or {}
        located = located or {}
        self.addr_of = {}  # destination id -> (ip, port): its only or first address
        self.by_addr = {}  # (ip, port) -> [destination]
        # sets with a TCP or TLS destination: under --processes their calls live in worker 0
        self.stream_sets = set()
        # destination id -> its addresses (lbcore.sipdns.Hop), when DNS gave more than one or
        # another transport: the router orders them per call (SRV weights) and fails over along them
        self.hops_of = {}
        for dset in table.sets.values():
            for d in dset.destinations:
                hops = located.get(d.id)
                if d.transport != "udp" or any(h.transport != "udp" for h in hops or ()):
                    self.stream_sets.add(dset.setid)
                if hops:
                    addr = hops[0].addr
                    if len(hops) > 1 or hops[0].transport != d.transport:
                        self.hops_of[d.id] = hops
                    self.addr_of[d.id] = addr
                    self.by_addr.setdefault(addr, []).append(d)
                    continue
                ip = resolved.get(d.host) or literal(d.host)
                if ip is None:
                    log.error("destination %s (%s): host %s does not resolve; not used until it does", d.id, d.uri, d.host)
                    continue
                addr = (ip, d.port)
                self.addr_of[d.id] = addr
                self.by_addr.setdefault(addr, []).append(d)
        self._route_cache = {}
        self._trusted_cache = {}

    def _match(self, ip):
        """(the longest source rule matching ip: (network, set id, carrier), or None; trusted)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None, False
        for rule in self.rules:
            net = rule[0]
            if addr.version == net.version and addr in net:
                return rule, True
        return None, any(addr.version == n.version and addr in n for n in self.trusted)

    def route_for(self, ip):
        """(set id, carrier) of a source: the longest source-rule match, else (the default set, "other")."""
        try:
            return self._route_cache[ip]
        except KeyError:
            pass
        rule, _ = self._match(ip)
        route = (self.default_set, OTHER_CARRIER) if rule is None else rule[1:]
        if len(self._route_cache) < _CACHE_MAX:
            self._route_cache[ip] = route
        return route

    def why_for(self, ip):
        """Why a source's calls go to their set, for the call records: "rule <network>" or "default"."""
        rule, _ = self._match(ip)
        return "default" if rule is None else f"rule {rule[0]}"

    def set_for(self, ip):
        """Longest source-rule match, else the default set."""
        return self.route_for(ip)[0]

    def is_trusted(self, ip):
        """Matches a source rule or lies in trusted_networks (else: no open relay, 403)."""
        try:
            return self._trusted_cache[ip]
        except KeyError:
            pass
        _, trusted = self._match(ip)
        if len(self._trusted_cache) < _CACHE_MAX:
            self._trusted_cache[ip] = trusted
        return trusted
