"""The harness's port blocks share +900..+999 with the browser tests' live server: a held port is skipped."""

import socket

from proxy.tests.harness import PORT_BASE, port_block


def test_a_block_with_a_port_held_over_tcp_is_skipped():
    first = next(port_block())
    following = PORT_BASE + (first - PORT_BASE + 10) % 100
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        # what the browser tests' session-wide live server does; dnsmasq then failed with
        # "Address already in use" on the harness's seventh port
        held.bind(("127.0.0.1", following + 6))
        held.listen()
        block = list(port_block())
    assert following + 6 not in block
    assert len(block) == 10
