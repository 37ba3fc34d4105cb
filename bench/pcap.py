"""INVITE -> 180 as seen on the wire by the caller: a packet capture on `lo`, kernel timestamps.

For each Call-ID, the first INVITE the UAC sent and the first 180 that reached it; the difference
is what the proxy (or, for `direct`, nothing but the server) adds to ringing. SIPp's own clock
counts whole milliseconds; the kernel's stamps (SO_TIMESTAMPNS on an AF_PACKET socket) do not.
Needs CAP_NET_RAW (root in the bench container).
"""

import socket
import struct
import threading

from bench.measure import percentile

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class RingCapture:
    def __init__(self, uac_port):
        self.uac_port = uac_port
        self.invite_at = {}  # Call-ID -> first INVITE from the UAC (epoch seconds, kernel stamp)
        self.ring_at = {}  # Call-ID -> first 180 to the UAC
        # Call-ID -> [INVITE in, INVITE out, 180 in, 180 out]: the first two INVITEs and 180s seen,
        # which through a proxy are its two sides (where the tail comes from: us or the server)
        self.legs = {}
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, name=f"ring-capture-{uac_port}", daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                frame, anc, _flags, addr = self.sock.recvmsg(65535, 64)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING:  # loopback shows each datagram twice; keep the delivery
                continue
            stamp = None
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", data[:16])
                    stamp = sec + nsec / 1e9
            if stamp is not None:
                self._inspect(frame, stamp)

    def _inspect(self, frame, stamp):
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            return
        udp = 14 + (frame[14] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", frame[udp : udp + 4])
        payload = frame[udp + 8 :]
        if payload.startswith(b"INVITE "):
            self._leg(payload, 0, stamp)
        elif payload.startswith(b"SIP/2.0 180"):
            self._leg(payload, 2, stamp)
        if sport == self.uac_port and payload.startswith(b"INVITE "):
            table = self.invite_at
        elif dport == self.uac_port and payload.startswith(b"SIP/2.0 180"):
            table = self.ring_at
        else:
            return
        call_id = _call_id(payload)
        if call_id not in table:
            table[call_id] = stamp

    def _leg(self, payload, first, stamp):
        legs = self.legs.setdefault(_call_id(payload), [None, None, None, None])
        if legs[first] is None:
            legs[first] = stamp
        elif legs[first + 1] is None:
            legs[first + 1] = stamp

    def legs_summary(self):
        """Through a proxy: its hold of the INVITE, the server's INVITE -> 180, its hold of the
        180 (p50/p99 ms each), and the five longest holds with when they were (s into the step)."""
        whole = [v for v in self.legs.values() if None not in v]
        if not whole:
            return None
        start = min(v[0] for v in whole)
        parts = []
        for name, a, b in (("proxy INVITE", 0, 1), ("server", 1, 2), ("proxy 180", 2, 3)):
            ms = sorted(1000 * (v[b] - v[a]) for v in whole)
            parts.append(f"{name} p50={ms[len(ms) // 2]:.3f} p99={percentile(ms, 99):.3f} max={ms[-1]:.3f}")
        holds = sorted(((1000 * (v[1] - v[0] + v[3] - v[2]), v[0] - start) for v in whole), reverse=True)[:5]
        worst = ", ".join(f"{ms:.2f} ms at {at:.2f} s" for ms, at in holds)
        return f"{len(whole)} calls; " + "; ".join(parts) + f"; longest holds: {worst}"

    def close(self):
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()

    def ring_ms(self):
        """INVITE -> 180 per call, ms."""
        return [1000 * (self.ring_at[c] - t) for c, t in self.invite_at.items() if c in self.ring_at]

    def summary(self):
        values = self.ring_ms()
        if not values:
            return None, None, 0
        values.sort()
        return values[len(values) // 2], percentile(values, 99), len(values)


def _call_id(payload):
    for line in payload.split(b"\r\n"):
        if line[:8].lower() == b"call-id:" or line[:2].lower() == b"i:":
            return line.split(b":", 1)[1].strip()
        if not line:
            break
    return b""
