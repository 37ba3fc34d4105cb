"""Loopback ports for the tests' SIP peers."""

import socket


def is_free(port, reuse_addr=False):
    """Nothing holds `port` on 127.0.0.1, over UDP or TCP. `reuse_addr`: for a server that binds
    with SO_REUSEADDR (http.server, asyncio), which a closed connection's TIME_WAIT does not stop."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if reuse_addr:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
