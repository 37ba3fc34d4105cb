"""--advertise: Via and Record-Route name the floating address, not the socket, and either node
of a cluster (same table secret, same advertised address) carries a dialog the other set up."""

import asyncio

import pytest

from proxy.core import Proxy
from proxy.tests.harness import Harness, dest, peer_at, request, run, table
from proxy.transport import UdpListener, parse_advertise

FLOATING = "127.0.0.9"
CLUSTER = {"trusted_networks": ["127.0.0.1/32"], "dialog_secret": "shared-by-the-cluster"}


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


def test_via_and_record_route_name_the_advertised_address():
    async def scenario():
        async with Harness(_one, advertise=(FLOATING, None)) as h:
            h.invite(b"adv-1")
            inv = await h.uas[h.dest_ports[0]].recv()
            via = inv.get_all(b"via")[0]
            assert via.startswith(b"SIP/2.0/UDP 127.0.0.9:%d;branch=" % h.proxy_port), via
            rr = inv.get_all(b"record-route")
            assert len(rr) == 1 and rr[0].startswith(b"<sip:127.0.0.9:%d;lr;lbs=" % h.proxy_port), rr

    run(scenario())


def test_it_relays_in_dialog_requests_whose_route_names_the_advertised_address():
    async def scenario():
        async with Harness(_one, advertise=(FLOATING, None)) as h:
            uas = h.dest_ports[0]
            routes = await h.call_up(b"adv-2", uas)  # the ACK already went by the advertised Route
            assert routes[0].startswith(b"<sip:127.0.0.9:")
            h.send(
                request(
                    b"BYE",
                    h.uac_port,
                    h.proxy_port,
                    b"adv-2",
                    cseq=2,
                    to_tag=b"uas",
                    routes=routes,
                    uri=b"sip:127.0.0.1:%d" % uas,
                )
            )
            bye = await h.uas[uas].recv()
            assert bye.method == b"BYE" and not bye.get_all(b"route")

    run(scenario())


def test_the_other_node_carries_the_dialog_after_a_takeover():
    """Node B (own socket, same advertised address and secret) relays the callee's BYE of a call
    set up through node A, from an untrusted address: only a Record-Route B can verify passes."""

    async def scenario():
        async with Harness(_one, advertise=(FLOATING, None), **CLUSTER) as a:
            routes = await a.call_up(b"adv-3", a.dest_ports[0])
            loop = asyncio.get_running_loop()
            port_b = next(a.ports)
            b = Proxy(loop, "b")
            _, lis = await loop.create_datagram_endpoint(
                lambda: UdpListener(b, "127.0.0.1", port_b, advertise=(FLOATING, a.proxy_port)),
                local_addr=("127.0.0.1", port_b),
                reuse_port=True,
            )
            b.add_listener(lis)
            b.start()
            b.apply_table(table([dest(1, a.dest_ports[0])], **CLUSTER))
            callee_port = next(a.ports)
            callee = await peer_at("127.0.0.66", callee_port)
            try:
                bye = request(
                    b"BYE",
                    callee_port,
                    port_b,
                    b"adv-3",
                    cseq=2,
                    to_tag=b"caller",
                    routes=routes,
                    uri=b"sip:caller@127.0.0.1:%d" % a.uac_port,
                )
                bye = bye.replace(
                    b"From: <sip:caller@127.0.0.1:%d>;tag=caller" % callee_port, b"From: <sip:service@127.0.0.1>;tag=uas"
                )
                callee.send(bye, port_b)
                got = await a.uac.recv()
                assert got.method == b"BYE" and got.call_id == b"adv-3"
                assert got.get_all(b"via")[0].startswith(b"SIP/2.0/UDP 127.0.0.9:%d;" % a.proxy_port)
            finally:
                callee.close()
                b.stop()
                lis.transport.close()

    run(scenario())


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("203.0.113.10", ("203.0.113.10", None)),
        ("203.0.113.10:5080", ("203.0.113.10", 5080)),
        ("sip.example.com:5060", ("sip.example.com", 5060)),
        ("[2001:db8::1]:5060", ("2001:db8::1", 5060)),
        ("2001:db8::1", ("2001:db8::1", None)),
    ],
)
def test_it_reads_advertise_specs(spec, parsed):
    assert parse_advertise(spec) == parsed


@pytest.mark.parametrize(
    "spec",
    ["", "1.2.3.4:0", "1.2.3.4:x", "a b:5060", "[::1", "host;evil=1", "1.2.3.4:\u0665\u0660\u0668\u0660", "1.2.3.4:\u00b2"],
)
def test_it_names_a_bad_advertise_spec(spec):
    with pytest.raises(ValueError, match="advertise"):
        parse_advertise(spec)
