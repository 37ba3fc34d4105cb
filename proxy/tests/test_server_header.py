"""A Server header that could inject headers never reaches the wire, whatever the table says."""

from lbcore.contract import Table
from proxy.tests.harness import Harness, dest, request, run

INJECTED = "lbpanel\r\nContact: <sip:evil@203.0.113.9>\r\nP-Asserted-Identity: <sip:boss@example.com>"


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


def test_a_table_with_crlf_in_server_header_answers_with_server_lbpanel():
    async def scenario():
        async with Harness(_one, server_header=INJECTED) as h:
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"srv-1"))
            ok = await h.uac.recv()
            h.send(request(b"REGISTER", h.uac_port, h.proxy_port, b"srv-2"))
            no = await h.uac.recv()
            return ok, no

    for resp in run(scenario()):
        assert resp.get(b"server") == b"lbpanel"
        assert resp.get(b"contact") is None and resp.get(b"p-asserted-identity") is None


def test_a_good_server_header_is_sent_as_configured():
    async def scenario():
        async with Harness(_one, server_header="lbpanel/2 (site a)") as h:
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"srv-3"))
            return await h.uac.recv()

    assert run(scenario()).get(b"server") == b"lbpanel/2 (site a)"


def test_the_table_names_what_is_wrong(caplog):
    table = Table(version=7, sets={}, source_rules=(), settings={"server_header": "lb\x00"})
    assert table.server_header == b"lbpanel"
    assert "table 7: server_header 'lb\\x00'" in caplog.text
