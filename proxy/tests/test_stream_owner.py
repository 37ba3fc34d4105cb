"""Under --processes worker 0 holds the TCP and TLS connections, so a call with such a leg lives there,
and whichever worker a request or response of the call reaches by its Call-ID hands it to worker 0.

- worker 0 names itself in its Record-Route (FIRST_WORKER_MARK); an in-dialog request whose Route
  carries it goes to worker 0, from the caller or from the server;
- an INVITE (and its CANCEL) from a source whose set has a TCP destination goes to worker 0;
- a response to a request worker 0 sent from the public address, answered there, goes to worker 0.
"""

import pytest

from lbcore.contract import DestinationSpec
from lbcore.sipdns import Hop
from proxy.core import FIRST_WORKER_MARK
from proxy.tests.harness import Harness, dest, request, run, table
from proxy.view import TableView
from sip.message import parse_message
from sip.responses import response_bytes


def tcp_dest(id, port):
    return DestinationSpec(
        id=id, setid=1, uri=f"sip:127.0.0.1:{port};transport=tcp", host="127.0.0.1", port=port, transport="tcp"
    )


async def _worker(h, handed, dests=None):
    """Make h.core a worker other than 0: what it would hand over lands in `handed`."""
    h.core.stream_owner = lambda data, addr: handed.append((data, addr))
    if dests is not None:
        h.core.apply_table(table(dests))


def _in_dialog(h, mark, from_port):
    route = b"<sip:127.0.0.1:%d;lr%s;lbs=abc>" % (h.proxy_port, mark)
    return request(
        b"BYE",
        from_port,
        h.proxy_port,
        b"in-dialog-1",
        to_tag=b"callee",
        routes=(route,),
        uri=b"sip:caller@127.0.0.1:%d" % h.uac_port,
    )


def _handed(build, dests=None):
    async def go():
        async with Harness(lambda p: ([dest(1, p[0])], [])) as h:
            handed = []
            await _worker(h, handed, dests(h) if dests else None)
            data, addr = build(h)
            h.core.on_message(data, h.listener, addr, None)
            return [a for _, a in handed], addr

    return run(go())


@pytest.mark.parametrize("side", ["server", "caller"])
def test_an_in_dialog_request_naming_worker_0_goes_there_from_either_side(side):
    def build(h):
        port = h.dest_ports[0] if side == "server" else h.uac_port
        return _in_dialog(h, FIRST_WORKER_MARK, port), ("127.0.0.1", port)

    handed, addr = _handed(build)
    assert handed == [addr]


def test_an_in_dialog_request_of_a_call_this_worker_holds_stays():
    handed, _ = _handed(lambda h: (_in_dialog(h, b"", h.uac_port), ("127.0.0.1", h.uac_port)))
    assert handed == []


def test_the_mark_counts_only_in_our_own_route_entry():
    def forged(h):
        route = b"<sip:127.0.0.1:%d;lr;lbs=abc>, <sip:203.0.113.5:5060;lr%s>" % (h.proxy_port, FIRST_WORKER_MARK)
        data = request(b"BYE", h.uac_port, h.proxy_port, b"in-dialog-2", to_tag=b"callee", routes=(route,))
        return data, ("127.0.0.1", h.uac_port)

    handed, _ = _handed(forged)
    assert handed == []


@pytest.mark.parametrize("method", [b"INVITE", b"CANCEL"])
def test_an_invite_and_its_cancel_to_a_set_with_a_tcp_destination_go_to_worker_0(method):
    handed, addr = _handed(
        lambda h: (request(method, h.uac_port, h.proxy_port, b"tcp-set-1"), ("127.0.0.1", h.uac_port)),
        dests=lambda h: [dest(1, h.dest_ports[0]), tcp_dest(2, h.dest_ports[1])],
    )
    assert handed == [addr]


def test_an_invite_to_a_udp_only_set_stays():
    handed, _ = _handed(lambda h: (request(b"INVITE", h.uac_port, h.proxy_port, b"udp-set-1"), ("127.0.0.1", h.uac_port)))
    assert handed == []


def test_a_set_is_a_tcp_one_when_dns_gives_a_tcp_address():
    tbl = table([dest(1, 5081)])
    assert TableView(tbl).stream_sets == set()
    assert TableView(tbl, located={1: [Hop("udp", "127.0.0.1", 5081), Hop("tcp", "127.0.0.1", 5082)]}).stream_sets == {1}


def test_worker_0_of_several_marks_its_record_route():
    async def go(mark):
        async with Harness(lambda p: ([dest(1, p[0])], [p[0]])) as h:
            h.core.rr_mark = mark
            h.invite(b"mark-1")
            inv = await h.uas[h.dest_ports[0]].recv()
            return inv.get(b"record-route")

    assert FIRST_WORKER_MARK in run(go(FIRST_WORKER_MARK))
    assert FIRST_WORKER_MARK not in run(go(b""))


def test_a_response_to_worker_0s_request_answered_at_the_public_port_goes_to_worker_0():
    def answered_here(h):
        # worker 0 relayed a BYE to the caller naming its own port (here dest_ports[3]); the caller
        # answered to the public port, where the kernel's Call-ID hash brought it to this worker
        bye = request(b"BYE", h.dest_ports[3], h.uac_port, b"w0-bye-1", branch=b"z9hG4bK-another-worker-1", to_tag=b"t")
        return response_bytes(parse_message(bye), 200, b"OK"), ("127.0.0.1", h.uac_port)

    handed, addr = _handed(answered_here)
    assert handed == [addr]


def test_what_is_handed_over_is_captured_by_worker_0_alone():
    class Hep:
        captured = 0

        def inbound(self, *args):
            self.captured += 1

    async def go():
        async with Harness(lambda p: ([dest(1, p[0])], [])) as h:
            handed = []
            await _worker(h, handed)
            h.core.hep = hep = Hep()
            bye = request(b"BYE", h.dest_ports[3], h.uac_port, b"w0-bye-2", branch=b"z9hG4bK-another-worker-2", to_tag=b"t")
            h.core.on_message(response_bytes(parse_message(bye), 200, b"OK"), h.listener, ("127.0.0.1", h.uac_port), None)
            h.core.on_message(_in_dialog(h, FIRST_WORKER_MARK, h.uac_port), h.listener, ("127.0.0.1", h.uac_port), None)
            h.core.hep = None  # a stand-in: the proxy's shutdown would close a real sender
            return len(handed), hep.captured

    assert run(go()) == (2, 0)
