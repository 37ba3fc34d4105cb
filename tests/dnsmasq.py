"""A real DNS server for the tests: Debian's dnsmasq in the foreground on a high loopback port.

Authoritative for `test.` (--local: an unknown name is NXDOMAIN, never forwarded anywhere), with
the records a test gives as dnsmasq options, and TTLs of `ttl` seconds. `restart(records)` swaps
the zone (dnsmasq rereads no SRV record on SIGHUP); the port stays, so a resolver pointed at it
(SIP_DNS_SERVERS) sees the change at the next lookup.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.ports import is_free

# Above the e2e blocks (45 x 20 from LBPANEL_TEST_PORT_BASE) within the 1,000 ports a job is given.
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 25000) + 950


def dnsmasq_binary():
    """dnsmasq lives in /usr/sbin, which a non-root PATH may lack."""
    found = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.access("/usr/sbin/dnsmasq", os.X_OK) else None)
    if found is None:
        pytest.fail("dnsmasq is not installed: apt-get install -y dnsmasq (make test-deps)")
    return found


def free_port():
    for port in range(PORT_BASE, PORT_BASE + 40):
        if is_free(port):
            return port
    raise RuntimeError(f"no free port for dnsmasq from {PORT_BASE}")


class Dnsmasq:
    def __init__(self, records, *, ttl=1, port=None):
        self.binary = dnsmasq_binary()
        self.port = port or free_port()
        self.ttl = ttl
        self.proc = None
        self.start(records)

    @property
    def servers(self):
        """The SIP_DNS_SERVERS value naming it."""
        return f"127.0.0.1:{self.port}"

    def start(self, records):
        cmd = [
            self.binary,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--local=/test/",
            f"--local-ttl={self.ttl}",
            f"--auth-ttl={self.ttl}",
            "--cache-size=0",
            "--pid-file",
            *records,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def restart(self, records):
        self.stop()
        self.start(records)

    def _wait_ready(self):
        deadline = time.monotonic() + 10
        query = _query_bytes("ready.check.test")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.proc.stderr.read().decode(errors='replace')}")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                try:
                    s.sendto(query, ("127.0.0.1", self.port))
                    s.recvfrom(512)
                    return
                except OSError:
                    time.sleep(0.05)
        raise RuntimeError(f"dnsmasq on 127.0.0.1:{self.port} did not answer")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def _query_bytes(name):
    """A bare DNS query for `name` IN A (so readiness needs no DNS library)."""
    header = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return header + qname + b"\x00\x01\x00\x01"


def srv(name, target, port, priority=10, weight=10):
    return f"--srv-host={name},{target},{port},{priority},{weight}"


def host(name, ip):
    return f"--host-record={name},{ip}"


def naptr(name, order, preference, service, replacement):
    return f"--naptr-record={name},{order},{preference},S,{service},,{replacement}"


@pytest.fixture
def dnsmasq():
    """dnsmasq(records, ttl=1) -> a running Dnsmasq; every one started is stopped at the end."""
    started = []

    def start(records, **kw):
        server = Dnsmasq(records, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
