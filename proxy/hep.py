"""SIP capture: a HEPv3 copy of every SIP message the proxy receives or sends, over UDP to
Homer, heplify-server or sngrep (`hep_destination` in the proxy settings, lbcore/hep.py).

Hand-written: PyPI has no HEP encoder (its `hep*` packages are physics tools; sipcapture's
own hep-python is a placeholder repository, its agents are C and Go), and HEP3 is a 6-byte
header and a dozen fixed chunks (sipcapture/HEP, HEP3 Network Protocol Specification rev 37;
the reading sngrep 1.6 does is the one tested, tests/e2e_proxy/test_hep_capture.py).

Capture must never hold a message up: the sender owns one non-blocking UDP socket; a copy the
kernel will not take at once is dropped and counted, never queued (a slow or dead Homer must
not grow our memory or stall the loop), and nothing here raises into the message path.
While capture is off `Proxy.hep` is None, and a message pays one attribute test for it.
"""

import logging
import socket
import struct
import time

from lbcore.contract import DEFAULT_SETTINGS
from lbcore.hep import parse_hep_destination
from proxy.logquota import LogQuota
from proxy.resolver import literal

log = logging.getLogger("proxy.hep")

# chunk types of the generic vendor (0x0000)
IP_FAMILY, IP_PROTO, SRC_IP4, DST_IP4, SRC_IP6, DST_IP6 = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
SRC_PORT, DST_PORT, TS_SEC, TS_USEC, PROTO_TYPE, CAPTURE_ID, PAYLOAD = 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0F
FAMILY_IPV4, FAMILY_IPV6 = 0x02, 0x0A  # the spec's values (Linux's AF_INET / AF_INET6)
UDP, TCP = 17, 6
PROTO_SIP = 0x01
HEP_MAX = 0xFFFF  # the header's total length is a uint16

_HEADER = struct.Struct("!4sH")  # "HEP3", total length
# the chunks that change with every message; the payload's value follows its header
_TIME_AND_PAYLOAD = struct.Struct("!HHHI" + "HHHI" + "HHH")  # seconds, microseconds, payload header
_TIME_AND_PAYLOAD_SIZE = _TIME_AND_PAYLOAD.size
_V4_MAPPED = b"\0" * 10 + b"\xff\xff"
_LEGS_MAX = 10000
SNDBUF = 4 << 20
RESOLVE_EVERY_S = 60.0  # a hep_destination host name is looked up again this often


def leg_chunks(proto, src_ip, src_port, dst_ip, dst_port):
    """The chunks every message between two addresses shares: family, protocol, addresses and
    ports. `src_ip`, `dst_ip`: packed (4 or 16 bytes; with one of each, both go as IPv6, the
    IPv4 one mapped)."""
    if len(src_ip) != len(dst_ip):
        src_ip = src_ip if len(src_ip) == 16 else _V4_MAPPED + src_ip
        dst_ip = dst_ip if len(dst_ip) == 16 else _V4_MAPPED + dst_ip
    v6 = len(src_ip) == 16
    ip_len = 6 + len(src_ip)
    return struct.pack(
        f"!HHHB HHHB HHH{len(src_ip)}s HHH{len(src_ip)}s HHHH HHHH",
        *(0, IP_FAMILY, 7, FAMILY_IPV6 if v6 else FAMILY_IPV4),
        *(0, IP_PROTO, 7, proto),
        *(0, SRC_IP6 if v6 else SRC_IP4, ip_len, src_ip),
        *(0, DST_IP6 if v6 else DST_IP4, ip_len, dst_ip),
        *(0, SRC_PORT, 8, src_port),
        *(0, DST_PORT, 8, dst_port),
    )


def agent_chunks(capture_id):
    """What every packet of one sender carries: protocol type SIP and the capture agent id."""
    return struct.pack("!HHHB HHHI", 0, PROTO_TYPE, 7, PROTO_SIP, 0, CAPTURE_ID, 10, capture_id)


def assemble(leg, agent, payload, now):
    """One HEPv3 packet from its constant parts and a message; `now`: epoch seconds.
    ValueError when it would pass 65,535 bytes."""
    total = 6 + len(leg) + len(agent) + _TIME_AND_PAYLOAD_SIZE + len(payload)
    if total > HEP_MAX:
        raise ValueError(f"a {len(payload)}-byte message does not fit in one HEP packet")
    sec, usec = divmod(int(now * 1_000_000 + 0.5), 1_000_000)
    stamp = _TIME_AND_PAYLOAD.pack(0, TS_SEC, 10, sec, 0, TS_USEC, 10, usec, 0, PAYLOAD, 6 + len(payload))
    return b"".join((_HEADER.pack(b"HEP3", total), leg, agent, stamp, payload))


def encode(proto, src_ip, src_port, dst_ip, dst_port, payload, capture_id, now):
    """One HEPv3 packet (see leg_chunks and assemble)."""
    return assemble(leg_chunks(proto, src_ip, src_port, dst_ip, dst_port), agent_chunks(capture_id), payload, now)


def decode(packet):
    """{chunk type: value} of a HEPv3 packet (ints, packed addresses as text, payload as bytes):
    for tests and for reading what a receiver would. ValueError on anything malformed."""
    if packet[:4] != b"HEP3" or len(packet) < 6:
        raise ValueError("not a HEP3 packet")
    (total,) = struct.unpack_from("!H", packet, 4)
    if total != len(packet):
        raise ValueError(f"length field {total} but {len(packet)} bytes")
    chunks, pos = {}, 6
    while pos < total:
        if pos + 6 > total:
            raise ValueError(f"a chunk header cut short at {pos}")
        vendor, kind, length = struct.unpack_from("!HHH", packet, pos)
        if length < 6 or pos + length > total:
            raise ValueError(f"chunk 0x{kind:04x} at {pos}: bad length {length}")
        value = packet[pos + 6 : pos + length]
        if vendor == 0:
            if kind in (SRC_IP4, DST_IP4):
                value = socket.inet_ntop(socket.AF_INET, value)
            elif kind in (SRC_IP6, DST_IP6):
                value = socket.inet_ntop(socket.AF_INET6, value)
            elif kind != PAYLOAD:
                value = int.from_bytes(value, "big")
            chunks[kind] = value
        pos += length
    return chunks


def packed(ip):
    """inet_pton of an IP literal in either family."""
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class HepSender:
    """One UDP socket to the capture server; `inbound` / `outbound` copy one SIP message."""

    def __init__(self, addr, capture_id, text=None):
        self.addr = addr
        self.capture_id = capture_id
        self.text = text or f"{addr[0]}:{addr[1]}"
        self.agent = agent_chunks(capture_id)
        self.sent = self.dropped = self.failed = 0
        # (listener, peer, tcp, inbound) -> leg_chunks; a flood of new peers only recomputes
        self._legs = {}
        self.drop_log = LogQuota(1, log, "HEP copies dropped")
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
            except OSError:
                pass  # the system's default buffer: more drops under a burst, nothing worse
            self.sock.connect(addr)  # an IP literal: no lookup; send() then skips the address per packet
        except OSError:
            self.sock.close()
            raise

    def inbound(self, data, listener, peer, tcp):
        """`data` came from `peer` (ip, port) to `listener`."""
        try:
            leg = self._legs.get((listener, peer, tcp, True))
            if leg is None:
                leg = self._leg(listener, peer, tcp, True)
            self._send(leg, data)
        except Exception as exc:  # noqa: BLE001 (capture must never break the message it copies)
            self._failed(exc)

    def outbound(self, data, listener, peer, tcp):
        """`data` leaves `listener` for `peer`."""
        try:
            leg = self._legs.get((listener, peer, tcp, False))
            if leg is None:
                leg = self._leg(listener, peer, tcp, False)
            self._send(leg, data)
        except Exception as exc:  # noqa: BLE001 (as inbound)
            self._failed(exc)

    def _send(self, leg, data):
        try:
            packet = assemble(leg, self.agent, data, time.time())
        except ValueError:
            self._drop("message too large for one HEP packet", len(data))
            return
        try:
            self.sock.send(packet)
        except BlockingIOError:
            self._drop("socket buffer full", len(data))
            return
        except ConnectionRefusedError:
            # the ICMP port unreachable of an earlier copy: nothing listens there (yet)
            self._drop("ICMP port unreachable: nothing listens there", len(data))
            return
        self.sent += 1

    def _leg(self, listener, peer, tcp, inbound):
        local = (packed(_local_ip(listener)), listener.port)
        remote = (packed(peer[0]), peer[1])
        src, dst = (remote, local) if inbound else (local, remote)
        leg = leg_chunks(TCP if tcp else UDP, src[0], src[1], dst[0], dst[1])
        if len(self._legs) >= _LEGS_MAX:
            self._legs.clear()
        self._legs[(listener, peer, tcp, inbound)] = leg
        return leg

    def _drop(self, why, size):
        self.dropped += 1
        self.drop_log.warning(
            time.monotonic(), "HEP copy to %s dropped (%s, %d bytes); %d dropped so far", self.text, why, size, self.dropped
        )

    def _failed(self, exc):
        self.failed += 1
        self.drop_log.warning(time.monotonic(), "HEP copy to %s failed: %r; %d failed so far", self.text, exc, self.failed)

    def close(self):
        self.drop_log.flush(time.monotonic() + 1.0)
        self.sock.close()


def _local_ip(listener):
    """The address a listener receives on; a wildcard one is named by its advertised address
    when that is an IP, else by the wildcard (we do not ask the kernel per packet)."""
    host = listener.host
    if host in ("", "0.0.0.0", "::"):
        host = literal(listener.advertised) or host or "0.0.0.0"
    return literal(host) or host


class HepCapture:
    """Follows the applied table's hep_destination and hep_capture_id: sets `core.hep` to a
    sender, or to None while capture is off (or its host name has never resolved). A name is
    looked up again every RESOLVE_EVERY_S, so capture follows Homer to a new address, and
    starts once a name that did not resolve does."""

    def __init__(self, core):
        self.core = core
        self.wanted = ("", None)
        self.target = None  # (host name, port) being followed, else None
        self._timer = None

    def apply(self, settings):
        text = (settings.get("hep_destination") or "").strip()
        capture_id = settings.get("hep_capture_id")
        capture_id = DEFAULT_SETTINGS["hep_capture_id"] if capture_id is None else capture_id
        wanted = (text, capture_id)
        if wanted == self.wanted:
            return
        self.wanted = wanted
        self.close()  # copies go where the table says, or nowhere: never to the old place meanwhile
        try:
            target = parse_hep_destination(text)
            if not 0 <= int(capture_id) <= 0xFFFFFFFF:
                raise ValueError(f"hep_capture_id {capture_id} is not a uint32")
        except (ValueError, TypeError) as exc:
            # the panel refuses these; a table written into Redis by hand may still carry one
            log.error("hep_destination %r, hep_capture_id %r: %s; SIP capture off", text, capture_id, exc)
            return
        if target is None:
            return
        ip = literal(target[0])
        if ip is not None:
            self._open(ip, target[1])
            return
        self.target = target
        self.refresh()

    def refresh(self):
        """Look the name up (again); c-ares on the loop, as for every other name: never
        getaddrinfo here. The answer comes through the resolver's cache (5 min, failures 30 s)."""
        if self._timer is not None:
            self._timer.cancel()  # one timer per name, also when called between two
            self._timer = None
        target, wanted = self.target, self.wanted
        if target is None:
            return

        def resolved(ip, why):
            if self.wanted != wanted or self.target != target:
                return  # a newer table changed the setting meanwhile
            if self._timer is None:
                self._timer = self.core.loop.call_later(RESOLVE_EVERY_S, self.refresh)
            current = self.core.hep
            if ip is None:
                if current is None:
                    log.error(
                        "hep_destination %s: host %s does not resolve (%s); SIP capture off until it does",
                        wanted[0],
                        target[0],
                        why,
                    )
                else:  # a DNS blip: the receiver is most likely still where it was
                    log.warning(
                        "hep_destination %s: host %s does not resolve (%s); copies still go to %s",
                        wanted[0],
                        target[0],
                        why,
                        current.addr[0],
                    )
                return
            if current is None or current.addr != (ip, target[1]):
                self._open(ip, target[1])

        self.core.resolver.resolve(target[0], False, resolved)

    def _open(self, ip, port):
        text, capture_id = self.wanted
        if self.core.is_local(ip, port):
            # our own SIP socket: each copy would arrive as a message, and be copied again
            log.error("hep_destination %s (%s:%s) is this proxy's own SIP address; SIP capture off", text, ip, port)
            self._use(None)
            return
        try:
            sender = HepSender((ip, port), int(capture_id), text)
        except OSError as exc:
            log.error("hep_destination %s (%s:%s): cannot open a UDP socket: %s; SIP capture off", text, ip, port, exc)
            self._use(None)
            return
        self._use(sender)
        log.info("SIP capture on: HEPv3 to %s (%s:%s), capture id %s", text, ip, port, capture_id)

    def _use(self, sender):
        old, self.core.hep = self.core.hep, sender
        if old is not None:
            old.close()
            log.info("SIP capture to %s off: %d copies sent, %d dropped, %d failed", old.text, old.sent, old.dropped, old.failed)

    def close(self):
        self.target = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._use(None)
