"""The real `manage.py runproxy` bounds what a stranger can hold over TCP: a connection cap per
address, a deadline to finish a message (slowloris) and an idle timeout, each set in the
proxy settings (through the panel's model and the published table), and each refusal or cut
is a line in the proxy's log."""

import socket
import time

import pytest

from tests.e2e_proxy.rawsip import Response, request

pytestmark = pytest.mark.sipp

PER_IP = 4


def _connect(port):
    return socket.create_connection(("127.0.0.1", port), 2.0)


def _options(sock, port):
    lport = sock.getsockname()[1]
    sock.sendall(request("OPTIONS", f"sip:127.0.0.1:{port}", lport, port).replace("SIP/2.0/UDP", "SIP/2.0/TCP").encode())
    sock.settimeout(2.0)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the proxy closed a connection it had admitted"
        data += chunk
    return Response(data)


def _closed_within(sock, within):
    """Seconds until the proxy closes `sock` (EOF or reset); AssertionError past `within`."""
    start = time.monotonic()
    while True:
        left = within - (time.monotonic() - start)
        if left <= 0:
            raise AssertionError(f"connection still open after {within}s")
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                break
        except ConnectionResetError:
            break
        except TimeoutError:
            continue
    return time.monotonic() - start


def _log_line(cluster, text, within=3.0):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if text in cluster.proxy.tail(200000):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in the proxy log:\n{cluster.proxy.tail()}")


@pytest.fixture
def edge(cluster_factory):
    # loopback is the stranger here: only 10/8 is trusted
    return cluster_factory(
        trusted_networks="10.0.0.0/8",
        tcp_max_per_ip=PER_IP,
        tcp_message_timeout_ms=500,
        tcp_idle_timeout_s=1,
    )


def test_a_stranger_is_held_to_its_connection_cap_and_the_refusal_is_logged(edge):
    port = edge.ports.proxy
    held = [_connect(port) for _ in range(PER_IP)]
    try:
        for sock in held:
            assert _options(sock, port).code >= 400  # an answer, so admitted (untrusted: refused service)
        extra = _connect(port)
        _closed_within(extra, 2.0)
        extra.close()
        _log_line(edge, f"refused: {PER_IP} connections from this address (tcp_max_per_ip)")
        assert _options(held[0], port).code >= 400
    finally:
        for sock in held:
            sock.close()


def test_a_slowloris_connection_is_cut_and_an_idle_one_closed(edge):
    port = edge.ports.proxy
    slow, idle = _connect(port), _connect(port)
    try:
        assert _options(idle, port).code >= 400
        idle_from = time.monotonic()
        data = request("OPTIONS", f"sip:127.0.0.1:{port}", slow.getsockname()[1], port).encode()
        start = time.monotonic()
        closed = None
        for i in range(len(data)):  # one byte per 50 ms: the message would take 15 s
            try:
                slow.send(data[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - start
                break
            slow.settimeout(0.05)
            try:
                if not slow.recv(65536):
                    closed = time.monotonic() - start
                    break
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed = time.monotonic() - start
                break
        # the proxy stamps a message's first byte with the loop's cached clock, which can run a
        # few ms behind ours: 0.45, not 0.5, still proves it waited for tcp_message_timeout_ms
        assert closed is not None and 0.45 <= closed < 2.0, closed
        _log_line(edge, "without finishing it, closing")
        _closed_within(idle, 3.0)
        assert time.monotonic() - idle_from >= 1.0  # not before tcp_idle_timeout_s after its last traffic
        assert edge.proxy.alive()
    finally:
        slow.close()
        idle.close()
