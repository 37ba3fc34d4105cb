"""Debian's sngrep as the HEP receiver of the end-to-end tests: it listens for HEPv3 on loopback
(`-L`), decodes the SIP in it and saves every packet it took to a pcap (`-O`), which we read."""

import signal
import socket
import struct
import subprocess
import time
import uuid
from pathlib import Path

from proxy.hep import encode, packed

SNGREP = "sngrep"


class Sngrep:
    def __init__(self, port, workdir, deadline_s=10.0):
        self.port = port
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pcap = self.workdir / "hep.pcap"
        self.out = open(self.workdir / "stdout.txt", "wb")
        # -N: no curses screen; -F: no ~/.sngreprc; only the HEP socket, no capture device
        self.proc = subprocess.Popen(
            [SNGREP, "-N", "-F", "-L", f"udp:127.0.0.1:{port}", "-O", str(self.pcap)],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + deadline_s
        while _udp_free(port):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"sngrep did not listen on udp 127.0.0.1:{port}: {self.screen()}")
            time.sleep(0.02)

    def mark(self, deadline_s=10.0):
        """Send sngrep a HEP packet of our own and wait until its pcap holds it: whatever the
        proxy sent before now has been taken by then (one socket, read in order)."""
        call_id = f"marker-{uuid.uuid4().hex[:8]}"
        sip = (
            f"INVITE sip:marker@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:marker@127.0.0.1>;tag=m\r\nTo: <sip:marker@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(encode(17, packed("127.0.0.9"), 9, packed("127.0.0.9"), 9, sip, 1, time.time()), ("127.0.0.1", self.port))
        end = time.monotonic() + deadline_s
        while not any(m.call_id == call_id for m in self.messages()):
            if time.monotonic() > end:
                raise AssertionError(f"sngrep did not save the marker {call_id} within {deadline_s}s: {self.screen()}")
            time.sleep(0.05)
        return call_id

    def messages(self):
        return read_pcap(self.pcap)

    def stop(self):
        """SIGTERM; returns sngrep's own count of the SIP dialogs it decoded."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.out.close()
        counts = [part for part in self.screen().replace("\n", "\r").split("\r") if part.startswith("Dialog count:")]
        return int(counts[-1].split(":")[1]) if counts else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.out.close()

    def screen(self):
        path = self.workdir / "stdout.txt"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def _udp_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Captured:
    __slots__ = ("src", "sport", "dst", "dport", "payload")

    def __init__(self, src, sport, dst, dport, payload):
        self.src, self.sport, self.dst, self.dport, self.payload = src, sport, dst, dport, payload

    @property
    def first_line(self):
        return self.payload.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def kind(self):
        """The method of a request, 'SIP/2.0 <code>' of a response."""
        line = self.first_line
        return " ".join(line.split(" ", 2)[:2]) if line.startswith("SIP/2.0") else line.split(" ", 1)[0]

    @property
    def call_id(self):
        for line in self.payload.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep and name.strip().lower() in (b"call-id", b"i"):
                return value.strip().decode("latin-1")
        return None


def read_pcap(path):
    """The SIP in a pcap sngrep wrote for HEP input: Ethernet + IPv4 + UDP frames it built."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    if len(data) < 24:
        return []
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out, pos = [], 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < incl:
            break  # the record sngrep is writing now
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
        out.append(Captured(socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport, ip[ihl + 8 :]))
    return out


def sipp_messages(sipp):
    """(call-id, 'S' or 'R', kind) of every message a SIPp run logged with -trace_shortmsg."""
    found = sorted(sipp.workdir.glob(f"{sipp.scenario.stem}_{sipp.pid}_shortmessages.log"))
    assert found, f"{sipp.name}: no -trace_shortmsg log in {sipp.workdir}"
    rows = set()
    for line in found[-1].read_text(errors="replace").splitlines():
        cols = line.split("\t")
        if len(cols) >= 7:
            first = cols[6]
            kind = " ".join(first.split(" ", 2)[:2]) if first.startswith("SIP/2.0") else first.split(" ", 1)[0]
            rows.add((cols[4], cols[3], kind))
    return rows


def caller_leg(messages, ports):
    """(call-id, 'S' if SIPp sent it else 'R', kind) of the copies between the callers and the
    proxy (neither end a server of `ports.ast`), as SIPp's own log names them (sipp_messages)."""
    servers = set(ports.ast.values())
    return {
        (m.call_id, "S" if m.dport == ports.proxy else "R", m.kind)
        for m in messages
        if m.sport not in servers and m.dport not in servers and ports.proxy in (m.sport, m.dport)
    }
