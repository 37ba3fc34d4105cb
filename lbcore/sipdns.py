"""Where a destination's host name sends SIP: RFC 3263 with dnspython (NAPTR -> SRV -> A/AAAA).

Used by the proxy (proxy.dnsnames keeps the table's names resolved in the background) and by the
prober, so both reach the same addresses. Only destinations configured by people come here: the
host names of requests from the wire go through proxy.resolver (c-ares, capped, rate-limited).

RFC 3263 §4 as it applies to a destination URI:
- an IP literal: no DNS at all;
- an explicit port: A/AAAA only, with that port (no SRV);
- an explicit transport: SRV for that transport, else A/AAAA on the default port;
- neither: NAPTR (SIP+D2U, SIP+D2T; SIPS+D2T for sips:), its SRV, else SRV per transport
  (UDP first, then TCP), else A/AAAA on the default port over the default transport.
A/AAAA look in /etc/hosts first (as getaddrinfo would), and a `.invalid` name is never asked.

The answer is every address in the order RFC 2782 gives: SRV priority first (lower first), then
as DNS listed them, each with its SRV weight; the proxy spreads new calls by weight within the
best priority (`weighted_order`) and fails over along the list. IPv4 addresses come before IPv6.
"""

import asyncio
import ipaddress
import os
import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from sip.uri import DEFAULT_PORTS, parse_uri

# A name is looked up again at its TTL, but never more often than MIN nor less often than MAX;
# a name that fails is tried again every RETRY (its last addresses stay in use meanwhile).
MIN_TTL, MAX_TTL, RETRY = 5.0, 3600.0, 5.0
LOOKUP_TIMEOUT = 2.0  # one whole RFC 3263 lookup (every query of it)
MAX_HOPS = 16  # addresses kept per name: a zone listing hundreds must not grow the proxy
HOSTS_PATH = "/etc/hosts"

# NAPTR service -> our transport, by URI scheme (RFC 3263 §4.1).
# SIPS+D2T and _sips._tcp are SIP over TLS (RFC 3263 4.1, 4.2): the Hop says "tls".
NAPTR_SERVICES = {"sip": {"SIP+D2U": "udp", "SIP+D2T": "tcp"}, "sips": {"SIPS+D2T": "tls"}}
SRV_PREFIX = {
    ("sip", "udp"): "_sip._udp.",
    ("sip", "tcp"): "_sip._tcp.",
    ("sip", "tls"): "_sips._tcp.",
    ("sips", "tls"): "_sips._tcp.",
}


@dataclass(frozen=True, slots=True)
class Hop:
    """One address a name leads to."""

    transport: str  # "udp", "tcp" or "tls"
    ip: str
    port: int
    priority: int = 0  # SRV priority, lower first (0 when not from SRV)
    weight: int = 0  # SRV weight within its priority

    @property
    def addr(self):
        return (self.ip, self.port)

    def __str__(self):
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}" + ("" if self.transport == "udp" else f";transport={self.transport}")


@dataclass(frozen=True, slots=True)
class Located:
    hops: tuple  # Hop, in RFC 2782 order
    ttl: float  # the smallest TTL of the records that gave them
    via: str  # "NAPTR", "SRV" or "A": which step answered
    missing: tuple = ()  # "target: why" for SRV targets that gave no address (the others are used)


@dataclass(frozen=True, slots=True)
class Name:
    """What RFC 3263 looks up for one destination URI (None for an IP literal: no lookup)."""

    scheme: str
    host: str
    port: int | None  # explicit port
    transport: str | None  # explicit transport parameter

    @classmethod
    def of(cls, uri_text):
        u = parse_uri(uri_text)
        if _is_literal(u.host):
            return None
        transport = u.params.get("transport")
        return cls(u.scheme, u.host.lower().rstrip("."), u.port, transport.lower() if transport else None)

    def __str__(self):
        port = f":{self.port}" if self.port else ""
        transport = f";transport={self.transport}" if self.transport else ""
        return f"{self.scheme}:{self.host}{port}{transport}"


class LookupFailed(Exception):
    """The name gave no address. `why` is short, for a person: NXDOMAIN, SERVFAIL, timeout, ..."""

    def __init__(self, name, why):
        super().__init__(f"{name}: {why}")
        self.why = why


def nameservers(text):
    """SIP_DNS_SERVERS ("host:port,host,[::1]:5353") -> [(ip, port)]; [] when empty (the system's)."""
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, port = item, 53
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest:
                port = rest.removeprefix(":")
        elif item.count(":") == 1:
            host, port = item.split(":")
        if not _is_literal(host):
            raise ValueError(f"SIP_DNS_SERVERS: {item!r} is not an IP address (name servers are given by address)")
        if isinstance(port, str):
            # ASCII digits: int() also reads " 53", "+53", "5_3" and "٥٣"
            if not (port.isascii() and port.isdigit()) or len(port) > 5:
                raise ValueError(f"SIP_DNS_SERVERS: {item!r} has a bad port")
            port = int(port)
        if not 0 < port < 65536:
            raise ValueError(f"SIP_DNS_SERVERS: {item!r} has a port out of range")
        out.append((host, port))
    return out


def make_resolver(servers=None, timeout=LOOKUP_TIMEOUT):
    """A dnspython asyncio resolver: `servers` [(ip, port)], else SIP_DNS_SERVERS, else the system's."""
    if servers is None:
        servers = nameservers(os.environ.get("SIP_DNS_SERVERS"))
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = timeout
    resolver.cache = None  # we keep answers ourselves, by TTL, with the last good one on failure
    return resolver


async def locate(resolver, name):
    """Located for a Name, or LookupFailed. Every query is bounded by the resolver's lifetime."""
    ttl = [MAX_TTL]
    missing = []
    default_transport = "tls" if name.scheme == "sips" else "udp"
    if name.port is not None:
        hops = await _addresses(resolver, name.host, name.port, name.transport or default_transport, ttl)
        return Located(hops, min(ttl), "A")
    if name.transport is None:
        hops = await _naptr(resolver, name, ttl, missing)
        if hops:
            return Located(hops, min(ttl), "NAPTR", tuple(missing))
    transports = [name.transport] if name.transport else ([default_transport] + (["tcp"] if name.scheme == "sip" else []))
    for transport in transports:
        prefix = SRV_PREFIX.get((name.scheme, transport))
        if prefix is None:
            continue
        hops = await _srv(resolver, prefix + name.host, transport, ttl, missing)
        if hops:
            return Located(hops, min(ttl), "SRV", tuple(missing))
    port = DEFAULT_PORTS[name.scheme]
    hops = await _addresses(resolver, name.host, port, name.transport or default_transport, ttl)
    return Located(hops, min(ttl), "A")


async def _query(resolver, qname, rdtype, ttl, *, optional):
    """The answer's records, or () when the name has none of that type and `optional`."""
    try:
        answer = await resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        if optional:
            return ()
        raise LookupFailed(qname, "NXDOMAIN") from None
    except dns.resolver.NoNameservers as exc:
        raise LookupFailed(qname, f"SERVFAIL ({_first_error(exc)})") from None
    except dns.exception.Timeout:
        raise LookupFailed(qname, "timeout") from None
    except dns.exception.DNSException as exc:
        raise LookupFailed(qname, f"{type(exc).__name__}: {exc}") from None
    if answer.rrset is None:
        return ()
    ttl.append(answer.rrset.ttl)
    return tuple(answer.rrset)


async def _naptr(resolver, name, ttl, missing):
    services = NAPTR_SERVICES[name.scheme]
    records = await _query(resolver, name.host, dns.rdatatype.NAPTR, ttl, optional=True)
    usable = [r for r in records if r.flags.decode().upper() == "S" and r.service.decode().upper() in services]
    usable.sort(key=lambda r: (r.order, r.preference))
    for r in usable:
        hops = await _srv(
            resolver, r.replacement.to_text(omit_final_dot=True), services[r.service.decode().upper()], ttl, missing
        )
        if hops:
            return hops
    return ()


async def _srv(resolver, qname, transport, ttl, missing):
    records = await _query(resolver, qname, dns.rdatatype.SRV, ttl, optional=True)
    # "." as the only target: the service is decidedly not available at this domain (RFC 2782)
    records = sorted((r for r in records if r.target.to_text() != "."), key=lambda r: r.priority)
    hops = []
    failures = []
    for r in records:
        target = r.target.to_text(omit_final_dot=True)
        try:
            found = await _addresses(resolver, target, r.port, transport, ttl)
        except LookupFailed as exc:
            failures.append(exc)  # one target that does not resolve leaves the others usable
            missing.append(f"{target}: {exc.why}")
            continue
        hops.extend(Hop(h.transport, h.ip, h.port, r.priority, r.weight) for h in found)
    if records and not hops:
        raise LookupFailed(qname, f"no SRV target has an address ({failures[0].why})")
    return tuple(hops[:MAX_HOPS])


async def _addresses(resolver, host, port, transport, ttl):
    # the hosts file first, as the C library's "files dns" would: an operator's pin of a name wins
    pinned = hosts_file().get(host)
    if pinned:
        return tuple(Hop(transport, ip, port) for ip in pinned[:MAX_HOPS])
    if host.endswith(".invalid") or host == "invalid":
        raise LookupFailed(host, "NXDOMAIN")  # RFC 6761 §6.4: never asked of a name server
    v4, v6 = await asyncio.gather(
        _query(resolver, host, dns.rdatatype.A, ttl, optional=False),
        _query(resolver, host, dns.rdatatype.AAAA, ttl, optional=False),
        return_exceptions=True,
    )
    if isinstance(v4, BaseException) and isinstance(v6, BaseException):
        raise v4
    ips = [r.address for r in v4] if not isinstance(v4, BaseException) else []
    ips += [r.address for r in v6] if not isinstance(v6, BaseException) else []
    if not ips:
        raise LookupFailed(host, "no address records")
    return tuple(Hop(transport, ip, port) for ip in ips[:MAX_HOPS])


_hosts = {"mtime": None, "names": {}}


def hosts_file(path=HOSTS_PATH):
    """name -> [addresses, IPv4 first] from /etc/hosts, read again when it changes."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return {}
    if _hosts["mtime"] != mtime:
        names = {}
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.split("#", 1)[0].split()
                    if len(fields) < 2 or not _is_literal(fields[0]):
                        continue
                    for name in fields[1:]:
                        names.setdefault(name.lower().rstrip("."), []).append(fields[0])
        except OSError:
            return {}
        for ips in names.values():
            ips.sort(key=lambda ip: ":" in ip)
        _hosts.update(mtime=mtime, names=names)
    return _hosts["names"]


def weighted_order(hops, rand=random.random):
    """RFC 2782's order for one call: priorities in turn; within one, a weighted draw without
    replacement (a weight-0 hop is drawn rarely, but is still drawn)."""
    out = []
    i = 0
    while i < len(hops):
        j = i
        while j < len(hops) and hops[j].priority == hops[i].priority:
            j += 1
        group = list(hops[i:j])
        while group:
            total = sum(h.weight for h in group)
            if total == 0:
                out.extend(group)
                break
            pick = rand() * total
            k = 0
            while k < len(group) - 1 and pick >= group[k].weight:
                pick -= group[k].weight
                k += 1
            out.append(group.pop(k))
        i = j
    return out


def ttl_bounds(env=os.environ):
    """(min, max) seconds between lookups of a good name: SIP_DNS_MIN_TTL, SIP_DNS_MAX_TTL."""
    bounds = []
    for var, default in (("SIP_DNS_MIN_TTL", MIN_TTL), ("SIP_DNS_MAX_TTL", MAX_TTL)):
        try:
            value = float(env.get(var) or default)
        except ValueError:
            raise ValueError(f"{var}={env[var]!r} is not a number of seconds") from None
        if value <= 0:
            raise ValueError(f"{var}={env[var]!r}: must be more than 0 seconds")
        bounds.append(value)
    if bounds[0] > bounds[1]:
        raise ValueError(f"SIP_DNS_MIN_TTL ({bounds[0]:g}) is more than SIP_DNS_MAX_TTL ({bounds[1]:g})")
    return tuple(bounds)


def refresh_in(located, bounds=(MIN_TTL, MAX_TTL)):
    """Seconds until a good answer is looked up again: its TTL, bounded."""
    return min(max(located.ttl, bounds[0]), bounds[1])


def _first_error(exc):
    errors = getattr(exc, "kwargs", {}).get("errors") or []
    for error in errors:
        text = str(error[3]) if len(error) > 3 else str(error)
        for word in ("SERVFAIL", "REFUSED", "NOTIMP", "FORMERR"):
            if word in text:
                return word
    return "no name server answered"


def _is_literal(host):
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
