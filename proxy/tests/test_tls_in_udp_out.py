"""A carrier on TLS, the server on UDP: the proxy's certificate verifies, the double Record-Route
puts the udp side on top for the server, and the server's BYE goes back over the caller's TLS
connection."""

from proxy.tests.harness import dest, run
from proxy.tests.tls_support import TlsHarness, TlsStream


def _invite(h, lport, call_id):
    return (
        b"INVITE sip:service@127.0.0.1:%d SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-%s\r\n"
        b"From: <sip:caller@127.0.0.1>;tag=caller\r\nTo: <sip:service@127.0.0.1>\r\n"
        b"Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:%d;transport=tls>\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ) % (h.proxy_port, lport, call_id, call_id, lport)


def test_a_call_from_tls_reaches_udp_and_the_server_hangs_up_over_tls(pki):
    async def main():
        async with TlsHarness(pki, lambda ports: ([dest(1, ports[0])], [ports[0]])) as h:
            caller = await TlsStream.open(h.proxy_port, pki.client_context())  # checks the proxy's IP SAN
            h.servers.append(caller)
            caller.send(_invite(h, caller.lport, b"tls-in-1"))
            uas = h.uas[h.dest_ports[0]]
            inv = await uas.recv()
            assert inv.get_all(b"via")[0].startswith(b"SIP/2.0/UDP 127.0.0.1:%d;" % h.proxy_port)
            rr = inv.get_all(b"record-route")
            assert rr[0].startswith(b"<sip:127.0.0.1:%d;lr;r2=on;lbs=" % h.proxy_port)
            assert rr[1].startswith(b"<sip:127.0.0.1:%d;transport=tls;lr;r2=on;lbs=" % h.proxy_port)
            uas.answer(inv, 200, b"OK")
            ok = await caller.recv()
            assert ok.code == 200 and len(ok.get_all(b"record-route")) == 2
            # the callee's BYE: Route = Record-Route top first; R-URI = the caller's Contact
            bye = (
                b"BYE sip:caller@127.0.0.1:%d;transport=tls SIP/2.0\r\n"
                b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-uasbye;rport\r\n"
                b"From: <sip:service@127.0.0.1>;tag=uas\r\nTo: <sip:caller@127.0.0.1>;tag=caller\r\n"
                b"Call-ID: tls-in-1\r\nCSeq: 7 BYE\r\nMax-Forwards: 70\r\n" % (caller.lport, h.dest_ports[0])
            )
            bye += b"".join(b"Route: " + r + b"\r\n" for r in rr) + b"Content-Length: 0\r\n\r\n"
            uas.send(bye, h.proxy_port)
            got = await caller.recv()
            assert got.method == b"BYE" and got.call_id == b"tls-in-1"
            assert got.get_all(b"via")[0].startswith(b"SIP/2.0/TLS 127.0.0.1:%d;" % h.proxy_port)
            assert b"route" not in got.names
            assert len([c for c in h.core.pool.live if c.tls]) == 1  # the caller's own connection, reused

    run(main())
