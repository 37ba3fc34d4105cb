"""TLS handshakes are bounded: a peer that connects and never finishes its handshake is dropped
after the handshake timeout and counted, garbage instead of a ClientHello is dropped and counted,
and connections still handshaking hold their place under the TCP caps."""

import asyncio
import logging

from proxy.tests.harness import run
from proxy.tests.tls_support import TlsHarness, TlsStream


def _none(ports):
    return [], []


async def _raw(port, host="127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))


async def _closed(reader):
    """Waits for the proxy to close the connection (EOF or reset); the bound only guards a hang."""
    try:
        while await asyncio.wait_for(reader.read(65536), 60):
            pass
    except ConnectionResetError:
        pass


def test_a_silent_peer_is_dropped_after_the_handshake_timeout_and_counted(pki, caplog):
    async def main():
        async with TlsHarness(pki, _none, handshake_timeout=0.2) as h:
            reader, writer = await _raw(h.proxy_port)
            await _admitted(h)
            await _closed(reader)
            writer.close()
            totals = h.core.accounting.totals
            assert totals["tcp_closed_handshake_timeout"] == 1
            assert h.core.pool.inbound == 0 and not h.core.pool.per_ip
            # the listener still serves a peer that does handshake
            ok = await TlsStream.open(h.proxy_port, pki.client_context())
            ok.close()

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(main())
    assert "TLS handshake not finished in time, closing" in caplog.text


async def _admitted(h):
    while h.core.pool.inbound == 0:
        await asyncio.sleep(0.01)
    return True


def test_garbage_instead_of_a_handshake_is_dropped_and_counted(pki, caplog):
    async def main():
        async with TlsHarness(pki, _none) as h:
            reader, writer = await _raw(h.proxy_port)
            writer.write(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n")
            await _closed(reader)
            writer.close()
            assert h.core.accounting.totals["tcp_closed_handshake_failed"] == 1
            assert h.core.pool.inbound == 0

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(main())
    assert "TLS handshake failed" in caplog.text


def test_connections_still_handshaking_count_under_the_per_address_cap(pki, caplog):
    async def main():
        untrusted = "127.0.0.66"
        async with TlsHarness(pki, _none, tcp_max_per_ip=2, trusted_networks=["127.0.0.1/32"]) as h:
            held = [await _raw(h.proxy_port, untrusted) for _ in range(2)]
            await _admitted(h)
            while h.core.pool.per_ip.get(untrusted, 0) < 2:
                await asyncio.sleep(0.01)
            try:  # reset at once (even before connect returns): the two silent handshakes hold the address's places
                reader, writer = await _raw(h.proxy_port, untrusted)
                await _closed(reader)
                writer.close()
            except ConnectionResetError:
                pass
            assert h.core.accounting.totals["tcp_refused_per_ip"] == 1
            assert h.core.pool.per_ip[untrusted] == 2
            for _, w in held:
                w.close()

    with caplog.at_level(logging.WARNING, logger="proxy.transport"):
        run(main())
    assert "(tcp_max_per_ip)" in caplog.text
