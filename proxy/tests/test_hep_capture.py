"""SIP capture in a running proxy: every message in and out is copied to the HEP destination,
refused and malformed ones too; a new table turns it off, on or elsewhere without a restart;
a receiver that is not there costs the calls nothing."""

import asyncio
import time

from proxy.hep import decode
from proxy.tests.harness import Harness, dest, peer_at, request, run, table

UNTRUSTED = "127.0.0.66"


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


class Sink(asyncio.DatagramProtocol):
    """A HEP receiver on loopback: decoded packets in arrival order."""

    def __init__(self):
        self.queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait(decode(data))

    async def until_marker(self, port):
        """Everything received before a marker datagram we send now: what the proxy sent
        before this moment has arrived ahead of it (one host, one receive queue)."""
        with_marker = []
        probe = asyncio.get_running_loop()
        transport, _ = await probe.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port))
        transport.sendto(b"HEP3\x00\x06")  # a bare header: no chunks
        transport.close()
        while True:
            got = await asyncio.wait_for(self.queue.get(), 5)
            if got == {}:
                return with_marker
            with_marker.append(got)


async def _sink(port):
    _, sink = await asyncio.get_running_loop().create_datagram_endpoint(Sink, local_addr=("127.0.0.1", port))
    return sink


def _summary(copies):
    """(first line of the SIP message, src port, dst port) per copy."""
    return [(c[0x0F].split(b"\r\n", 1)[0], c[0x07], c[0x08]) for c in copies]


def test_it_copies_every_message_of_a_call_in_and_out():
    async def scenario():
        async with Harness(_one) as h:
            sink_port = next(h.ports)
            sink = await _sink(sink_port)
            h.core.apply_table(
                table([dest(1, h.dest_ports[0])], version=2, hep_destination=f"127.0.0.1:{sink_port}", hep_capture_id=77)
            )
            a = h.dest_ports[0]
            invite = request(b"INVITE", h.uac_port, h.proxy_port, b"hep-call")
            h.send(invite)
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 200, b"OK")
            assert (await h.uac.recv()).code == 200
            copies = await sink.until_marker(sink_port)
            u, p = h.uac_port, h.proxy_port
            assert _summary(copies) == [
                (b"INVITE sip:service@127.0.0.1:%d SIP/2.0" % p, u, p),  # received
                (b"INVITE sip:service@127.0.0.1:%d SIP/2.0" % p, p, a),  # forwarded
                (b"SIP/2.0 100 Trying", p, u),  # our own reply, once the INVITE is on its way
                (b"SIP/2.0 200 OK", a, p),  # the server's answer
                (b"SIP/2.0 200 OK", p, u),  # relayed
            ]
            assert copies[0][0x0F] == invite, "the message as it came, before parsing"
            assert {(c[0x01], c[0x02], c[0x03], c[0x04], c[0x0B], c[0x0C]) for c in copies} == {
                (2, 17, "127.0.0.1", "127.0.0.1", 1, 77)
            }
            assert all(b"Call-ID: hep-call" in c[0x0F] for c in copies)
            assert h.core.hep.sent == 5 and h.core.hep.dropped == 0

    run(scenario())


def test_it_copies_what_it_refuses_and_what_it_cannot_parse():
    async def scenario():
        async with Harness(_one, trusted_networks=["127.0.0.1/32"]) as h:
            sink_port = next(h.ports)
            sink = await _sink(sink_port)
            h.core.apply_table(
                table(
                    [dest(1, h.dest_ports[0])],
                    version=2,
                    trusted_networks=["127.0.0.1/32"],
                    hep_destination=f"127.0.0.1:{sink_port}",
                )
            )
            port = next(h.ports)
            stranger = await peer_at(UNTRUSTED, port)
            stranger.send(request(b"INVITE", port, h.proxy_port, b"hep-refused"), h.proxy_port)
            assert (await stranger.recv()).code == 403
            junk = b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-j\r\nCSeq: banana\r\n\r\n" % h.uac_port
            h.send(junk)
            assert (await h.uac.recv()).code == 400
            copies = await sink.until_marker(sink_port)
            lines = [(c[0x0F].split(b"\r\n", 1)[0], c[0x03], c[0x04]) for c in copies]
            assert lines[0] == (b"INVITE sip:service@127.0.0.1:%d SIP/2.0" % h.proxy_port, UNTRUSTED, "127.0.0.1")
            assert lines[1][0].startswith(b"SIP/2.0 403") and lines[1][1:] == ("127.0.0.1", UNTRUSTED)
            assert copies[2][0x0F] == junk
            assert copies[3][0x0F].startswith(b"SIP/2.0 400")
            assert len(copies) == 4
            stranger.close()

    run(scenario())


def test_a_new_table_turns_it_off_and_on_again_without_a_restart():
    async def scenario():
        async with Harness(_one) as h:
            sink_port = next(h.ports)
            sink = await _sink(sink_port)
            dests = [dest(1, h.dest_ports[0])]
            on = {"hep_destination": f"127.0.0.1:{sink_port}"}

            async def options(call_id):
                h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, call_id, uri=b"sip:127.0.0.1:%d" % h.proxy_port))
                assert (await h.uac.recv()).code == 200
                return {c[0x0F].split(b"Call-ID: ")[1].split(b"\r\n")[0] for c in await sink.until_marker(sink_port)}

            assert await options(b"before") == set(), "off by default"
            h.core.apply_table(table(dests, version=2, **on))
            assert await options(b"on") == {b"on"}
            h.core.apply_table(table(dests, version=3, hep_destination=""))
            assert h.core.hep is None, "off: the message path tests one attribute"
            assert await options(b"off") == set()
            h.core.apply_table(table(dests, version=4, **on, hep_capture_id=9))
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"id", uri=b"sip:127.0.0.1:%d" % h.proxy_port))
            await h.uac.recv()
            assert {c[0x0C] for c in await sink.until_marker(sink_port)} == {9}

    run(scenario())


def test_a_host_name_is_resolved_off_the_message_path():
    async def scenario():
        async with Harness(_one) as h:
            sink_port = next(h.ports)
            sink = await _sink(sink_port)
            h.core.apply_table(table([dest(1, h.dest_ports[0])], version=2, hep_destination=f"localhost:{sink_port}"))
            assert h.core.hep is None, "no copies until the name resolves; the table is applied meanwhile"
            looked_up = asyncio.get_running_loop().create_future()
            # waits on the same lookup, answered after the capture's own callback (c-ares' timeout ends it)
            h.core.resolver.resolve("localhost", False, lambda ip, why: looked_up.set_result(ip))
            assert await looked_up == "127.0.0.1"
            assert h.core.hep.addr == ("127.0.0.1", sink_port)
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"named", uri=b"sip:127.0.0.1:%d" % h.proxy_port))
            await h.uac.recv()
            assert len(await sink.until_marker(sink_port)) == 2

    run(scenario())


def test_a_receiver_that_is_not_there_costs_the_calls_nothing():
    async def scenario():
        async with Harness(_one) as h:
            closed = next(h.ports)  # nothing listens: each copy brings an ICMP port unreachable back
            h.core.apply_table(table([dest(1, h.dest_ports[0])], version=2, hep_destination=f"127.0.0.1:{closed}"))
            for n in range(5):
                h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"lost-%d" % n, uri=b"sip:127.0.0.1:%d" % h.proxy_port))
                assert (await h.uac.recv()).code == 200
            hep = h.core.hep
            assert hep.dropped > 0 and hep.sent + hep.dropped == 10 and hep.failed == 0

    run(scenario())


def test_it_never_sends_the_copies_to_its_own_sip_socket():
    async def scenario():
        async with Harness(_one) as h:
            h.core.apply_table(table([dest(1, h.dest_ports[0])], version=2, hep_destination=f"localhost:{h.proxy_port}"))
            looked_up = asyncio.get_running_loop().create_future()
            h.core.resolver.resolve("localhost", False, lambda ip, why: looked_up.set_result(ip))
            await looked_up
            assert h.core.hep is None, "each copy would come back as a message and be copied again"
            h.core.apply_table(table([dest(1, h.dest_ports[0])], version=3, hep_destination=f"127.0.0.1:{h.proxy_port}"))
            assert h.core.hep is None

    run(scenario())


def test_a_host_name_is_followed_to_a_new_address_and_kept_through_a_dns_blip():
    async def scenario():
        async with Harness(_one) as h:
            sink_port = next(h.ports)
            cache = h.core.resolver.cache  # what a DNS answer leaves; the lookup itself is tested above
            cache["homer.test"] = ("127.0.0.1", time.monotonic() + 300)
            h.core.apply_table(table([dest(1, h.dest_ports[0])], version=2, hep_destination=f"homer.test:{sink_port}"))
            assert h.core.hep.addr == ("127.0.0.1", sink_port)
            assert h.core.capture._timer is not None, "looked up again later"
            cache["homer.test"] = ("127.0.0.2", time.monotonic() + 300)
            h.core.capture.refresh()
            assert h.core.hep.addr == ("127.0.0.2", sink_port)
            cache["homer.test"] = (None, time.monotonic() + 30)
            h.core.capture.refresh()
            assert h.core.hep.addr == ("127.0.0.2", sink_port), "a failed lookup keeps the last address"
            h.core.apply_table(table([dest(1, h.dest_ports[0])], version=3, hep_destination=""))
            assert h.core.hep is None and h.core.capture._timer is None

    run(scenario())
