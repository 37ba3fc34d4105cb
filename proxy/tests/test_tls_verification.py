"""A TLS server whose certificate does not verify is a dead branch: the call fails over at once,
and one log line names the destination and the verification's reason."""

import logging

import pytest

from proxy.tests.harness import run
from proxy.tests.tls_support import TlsHarness, tls_dest


@pytest.mark.parametrize(
    "cert, reason",
    [
        ("rogue", "certificate verify failed: unable to get local issuer certificate"),
        ("other_ip", "certificate verify failed: IP address mismatch"),
    ],
)
def test_an_unverifiable_server_fails_over_to_the_next(pki, caplog, cert, reason):
    async def main():
        dests = lambda ports: ([tls_dest(1, ports[0], priority=2), tls_dest(2, ports[1], priority=1)], ())  # noqa: E731
        async with TlsHarness(pki, dests) as h:
            bad = await h.tls_uas(h.dest_ports[0], getattr(pki, cert))
            good = await h.tls_uas(h.dest_ports[1])
            with caplog.at_level(logging.WARNING):
                h.invite(b"tls-verify-1")
                inv = await good.recv()
                assert inv.call_id == b"tls-verify-1"
                assert (await h.uac.recv()).code == 200
            assert bad.requests.empty()  # nothing was sent over the unverified connection
            assert h.suspects and h.suspects[0][0] == 1 and reason in h.suspects[0][1]
            lines = [r.getMessage() for r in caplog.records if "failover call-id=tls-verify-1" in r.getMessage()]
            assert len(lines) == 1
            assert f"sip:127.0.0.1:{h.dest_ports[0]};transport=tls" in lines[0] and reason in lines[0]

    run(main())


def test_with_verification_off_an_unverifiable_server_is_used(pki, tmp_path):
    from proxy import tls

    async def main():
        async with TlsHarness(pki, lambda ports: ([tls_dest(1, ports[0])], ())) as h:
            h.core.pool.tls = off
            bad = await h.tls_uas(h.dest_ports[0], pki.rogue)
            h.invite(b"tls-verify-off")
            assert (await bad.recv()).call_id == b"tls-verify-off"

    off = tls.build(str(pki.proxy[0]), str(pki.proxy[1]), None, verify=False)
    run(main())


def test_a_route_cannot_change_the_name_a_configured_server_is_verified_against(pki):
    async def main():
        named = lambda ports: ([tls_dest(1, ports[0], host="localhost", uri=f"sips:localhost:{ports[0]}")], ())  # noqa: E731
        async with TlsHarness(pki, named) as h:
            pool = h.core.pool
            addr = ("127.0.0.1", h.dest_ports[0])
            h.core.pool.note_tls_destinations(h.core.view.table, _with_addr(h.core.view, 1, addr))
            assert pool.tls_name(addr) == "localhost"
            pool.name_tls(addr, "evil.example")  # what a Route in someone's dialog could say
            assert pool.tls_name(addr) == "localhost"
            other = ("127.0.0.1", h.dest_ports[1])
            pool.name_tls(other, "sip.example")
            assert pool.tls_name(other) == "sip.example" and pool.tls_name(("127.0.0.1", 1)) == "127.0.0.1"

    run(main())


def _with_addr(view, dest_id, addr):
    view.addr_of[dest_id] = addr
    return view
