"""A proxy without a tls listener has no TLS address to put in Via and Record-Route: it does not
use TLS destinations (one error at table load) and answers 503 for a TLS next hop."""

import logging

from proxy.tests.harness import Harness, request, run
from proxy.tests.tls_support import tls_dest


def test_a_tls_destination_is_not_used_without_a_tls_listener(caplog):
    async def main():
        with caplog.at_level(logging.ERROR, logger="proxy.transport"):
            async with Harness(lambda ports: ([tls_dest(1, ports[0])], ())) as h:
                assert 1 not in h.core.view.addr_of
                h.invite(b"no-tls-1")
                assert (await h.uac.recv()).code == 503

    run(main())
    assert "destination 1 (sip:127.0.0.1:" in caplog.text and "is TLS but this proxy has no --listen tls: listener" in caplog.text


def test_an_in_dialog_request_to_a_tls_next_hop_gets_503_without_a_tls_listener():
    async def main():
        async with Harness(lambda ports: ([], ())) as h:
            uri = b"sip:uas@127.0.0.1:%d;transport=tls" % h.dest_ports[0]
            route = b"<sip:127.0.0.1:%d;lr>" % h.proxy_port
            h.send(request(b"BYE", h.uac_port, h.proxy_port, b"no-tls-2", cseq=2, to_tag=b"uas", routes=[route], uri=uri))
            reply = await h.uac.recv()
            assert (reply.code, reply.reason) == (503, b"Service Unavailable (no TLS listener)")

    run(main())
