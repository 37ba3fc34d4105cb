"""A carrier on UDP, the server on TLS: double Record-Route, Via TLS, BYE from either side,
one TLS connection for many calls."""

from proxy.tests.harness import request, run
from proxy.tests.tls_support import TlsHarness, tls_dest


def _harness(pki):
    return TlsHarness(pki, lambda ports: ([tls_dest(1, ports[0])], ()))


def test_the_call_goes_out_over_tls_with_a_double_record_route(pki):
    async def main():
        async with _harness(pki) as h:
            uas = await h.tls_uas(h.dest_ports[0])
            h.invite(b"tls-out-1")
            inv = await uas.recv()
            assert inv.get_all(b"via")[0].startswith(b"SIP/2.0/TLS 127.0.0.1:%d;" % h.proxy_port)
            rr = inv.get_all(b"record-route")
            assert len(rr) == 2
            assert rr[0].startswith(b"<sip:127.0.0.1:%d;transport=tls;lr;r2=on;lbs=" % h.proxy_port)
            assert rr[1].startswith(b"<sip:127.0.0.1:%d;lr;r2=on;lbs=" % h.proxy_port)
            ok = await h.uac.recv()
            assert ok.code == 200
            routes = list(reversed(ok.get_all(b"record-route")))
            uri = b"sip:uas@127.0.0.1:%d;transport=tls" % h.dest_ports[0]
            h.send(request(b"ACK", h.uac_port, h.proxy_port, b"tls-out-1", to_tag=b"uas", routes=routes, uri=uri))
            assert (await uas.recv()).method == b"ACK"
            h.send(request(b"BYE", h.uac_port, h.proxy_port, b"tls-out-1", cseq=2, to_tag=b"uas", routes=routes, uri=uri))
            bye = await uas.recv()
            assert bye.method == b"BYE"
            assert bye.get_all(b"via")[0].startswith(b"SIP/2.0/TLS ")
            assert (await h.uac.recv()).code == 200

    run(main())


def test_the_server_hangs_up_over_its_own_tls_connection_to_our_listener(pki):
    async def main():
        async with _harness(pki) as h:
            uas = await h.tls_uas(h.dest_ports[0])
            h.invite(b"tls-out-2")
            inv = await uas.recv()
            ok = await h.uac.recv()
            assert ok.code == 200
            # the callee's route set is the Record-Route as it came, top first: our tls side
            routes = ok.get_all(b"record-route")
            assert b"transport=tls" in routes[0]
            stream = await uas.connect(h.proxy_port)  # verifies the proxy's certificate against the CA
            bye = (
                b"BYE sip:caller@127.0.0.1:%d SIP/2.0\r\n"
                b"Via: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-uasbye\r\n"
                b"From: <sip:service@127.0.0.1>;tag=uas\r\n"
                b"To: <sip:caller@127.0.0.1:%d>;tag=caller\r\n"
                b"Call-ID: tls-out-2\r\nCSeq: 9 BYE\r\nMax-Forwards: 70\r\n" % (h.uac_port, stream.lport, h.uac_port)
            )
            bye += b"".join(b"Route: " + r + b"\r\n" for r in routes) + b"Content-Length: 0\r\n\r\n"
            stream.send(bye)
            got = await h.uac.recv()
            assert got.method == b"BYE"
            assert got.get_all(b"via")[0].startswith(b"SIP/2.0/UDP 127.0.0.1:%d;" % h.proxy_port)
            assert b"route" not in got.names  # both of our Record-Routes were popped
            h.uac.answer(got, 200, b"OK", tag=b"caller", contact=False)
            reply = await stream.recv()
            assert reply.code == 200 and reply.cseq == (9, b"BYE")
            assert inv.call_id == b"tls-out-2"

    run(main())


def test_many_calls_share_one_tls_connection(pki):
    async def main():
        async with _harness(pki) as h:
            uas = await h.tls_uas(h.dest_ports[0])
            for n in range(5):
                h.invite(b"tls-reuse-%d" % n)
                await uas.recv()
                assert (await h.uac.recv()).code == 200
            assert uas.connections == 1
            assert len([c for c in h.core.pool.live if c.tls]) == 1

    run(main())
