"""Loopback ports for the tests' SIP peers."""

import socket


def is_free(port, reuse_addr=False):
    """Nothing holds `port` on 127.0.0.1, over UDP or TCP. `reuse_addr`: for servers that bind with
    SO_REUSEADDR (asyncio, http.server, dnsmasq), whom the TIME_WAIT of a closed connection does
    not stop, only a socket bound or listening there. UDP has no TIME_WAIT: checked as it is."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if reuse_addr and kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
