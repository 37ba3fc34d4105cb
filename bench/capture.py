"""Count the INVITEs sent to one UDP port on loopback, without binding it.

A crashed server's port must stay closed (so the sender gets ICMP port-unreachable, as it would in
production), so we cannot listen there; an AF_PACKET socket on `lo` sees the datagrams anyway.
Needs CAP_NET_RAW (root in the bench container).
"""

import socket
import struct
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class InviteCounter:
    def __init__(self, port):
        self.port = port
        self.seen = []  # (monotonic time, Call-ID) of each INVITE datagram to the port
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, name=f"invite-counter-{port}", daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING:  # loopback shows each datagram twice; keep the delivery
                continue
            self._inspect(frame)

    def _inspect(self, frame):
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            return
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        dport = struct.unpack("!H", frame[udp + 2 : udp + 4])[0]
        payload = frame[udp + 8 :]
        if dport != self.port or not payload.startswith(b"INVITE "):
            return
        call_id = b""
        for line in payload.split(b"\r\n"):
            if line[:8].lower() == b"call-id:" or line[:2].lower() == b"i:":
                call_id = line.split(b":", 1)[1].strip()
                break
        self.seen.append((time.monotonic(), call_id))

    def between(self, start, end):
        """(datagrams, distinct calls) of INVITEs seen in [start, end)."""
        hits = [cid for t, cid in self.seen if start <= t < end]
        return len(hits), len(set(hits))

    def close(self):
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
