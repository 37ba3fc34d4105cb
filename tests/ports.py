"""Loopback ports for the tests' SIP peers."""

import socket


def is_free(port):
    """Nothing holds `port` on 127.0.0.1, over UDP or TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
