"""A proxy process under a low open file limit refuses inbound TCP past 3/4 of it, says so in
its log, and keeps serving: it never reaches the limit where accept() fails and the kernel
resets clients silently."""

import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

from proxy.tests.harness import port_block
from proxy.tests.tcp_support import port_is_free

ROOT = Path(__file__).resolve().parents[2]
NOFILE = 64  # soft = hard, so runproxy cannot raise it: the inbound cap is 48


def _limit_files():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _free_port():
    for _ in range(10):
        port = next(port_block())
        if port_is_free(port):
            return port
    raise RuntimeError("no free port (LBPANEL_TEST_PORT_BASE)")


class _Log:
    """The proxy's stderr, read without blocking."""

    def __init__(self, proc):
        self.fd = proc.stderr.fileno()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.text = ""

    def wait_for(self, needle, within=10.0):
        end = time.monotonic() + within
        while needle not in self.text:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle!r} in proxy output: {self.text[-2000:]}")
            if self.sel.select(timeout=min(left, 0.2)):
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise AssertionError(f"proxy exited before {needle!r}: {self.text[-2000:]}")
                self.text += chunk.decode(errors="replace")


def _ask(sock, port):
    lport = sock.getsockname()[1]
    sock.sendall(
        (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{lport};branch=z9hG4bKfl{lport}\r\n"
            f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: fl-{lport}\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    sock.settimeout(3.0)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    except ConnectionResetError:
        return None
    return data.split(b"\r\n")[0]


def test_it_refuses_inbound_tcp_before_the_open_file_limit_and_logs_it():
    port = _free_port()
    # Redis where nothing listens: the built-in table (loopback trusted), no Redis descriptors
    args = ["--listen", f"tcp:127.0.0.1:{port}", "--redis-url", "redis://127.0.0.1:9/0", "--node-name", "filelimit"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_limit_files,
    )
    log = _Log(proc)
    socks = []
    try:
        log.wait_for("proxy ready")
        log.wait_for("at most 48 inbound tcp connections")
        for _ in range(NOFILE):
            socks.append(socket.create_connection(("127.0.0.1", port), 3.0))
        answers = [_ask(s, port) for s in socks]
        assert answers.count(b"SIP/2.0 200 OK") == 48, answers
        assert answers.count(None) == NOFILE - 48  # reset at once, not left hanging
        log.wait_for("refused: 48 inbound connections, the cap (open file limit share 48)")
        for s in socks[:10]:
            s.close()
        socks = socks[10:]
        late = socket.create_connection(("127.0.0.1", port), 3.0)
        socks.append(late)
        deadline = time.monotonic() + 5.0
        while (answer := _ask(late, port)) is None:  # until the proxy has seen the closes
            assert time.monotonic() < deadline, "no place freed after 10 clients left"
            late.close()
            socks[-1] = late = socket.create_connection(("127.0.0.1", port), 3.0)
        assert answer == b"SIP/2.0 200 OK"
        assert proc.poll() is None
    finally:
        for s in socks:
            s.close()
        proc.kill()
        proc.wait()
