"""Under --processes, a server's in-dialog request for a TCP caller goes to worker 0, which holds the
caller's connection: recognised by the server's address, whichever of its DNS addresses it came from."""


from lbcore.sipdns import Hop
from proxy.tests.harness import Harness, dest, request, run, table
from proxy.view import TableView


def _bye_for_tcp_caller(h, from_port):
    route = b"<sip:127.0.0.1:%d;lr>" % h.proxy_port
    return request(
        b"BYE",
        from_port,
        h.proxy_port,
        b"srv-bye-1",
        to_tag=b"caller",
        routes=(route,),
        uri=b"sip:caller@127.0.0.1:%d;transport=tcp" % h.uac_port,
    )


def _handed_over(located_ports, from_index):
    async def go():
        async with Harness(lambda p: ([dest(1, p[0])], [])) as h:
            hops = [Hop("udp", "127.0.0.1", h.dest_ports[i]) for i in located_ports]
            h.core.view = TableView(table([dest(1, h.dest_ports[0])]), located={1: hops})
            handed = []
            h.core.stream_owner = lambda data, addr: handed.append(addr)
            addr = ("127.0.0.1", h.dest_ports[located_ports[from_index]])
            h.core.on_message(_bye_for_tcp_caller(h, addr[1]), h.listener, addr, None)
            return handed, addr

    return run(go())


def test_a_bye_from_a_servers_first_address_goes_to_worker_0():
    handed, addr = _handed_over([0, 1], 0)
    assert handed == [addr]


def test_a_bye_from_a_servers_second_srv_address_goes_to_worker_0():
    # before: only a name's first address counted as a server's, so this BYE stayed on its worker,
    # which has no connection to the caller
    handed, addr = _handed_over([0, 1], 1)
    assert handed == [addr]


def test_a_request_from_an_address_no_destination_has_stays_here():
    async def go():
        async with Harness(lambda p: ([dest(1, p[0])], [])) as h:
            handed = []
            h.core.stream_owner = lambda data, addr: handed.append(addr)
            stranger = ("127.0.0.1", h.dest_ports[3])
            h.core.on_message(_bye_for_tcp_caller(h, stranger[1]), h.listener, stranger, None)
            return handed

    assert run(go()) == []
