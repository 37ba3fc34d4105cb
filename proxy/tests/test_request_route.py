"""The seed's request_route decisions that end at the proxy."""

from proxy.tests.harness import Harness, dest, request, run


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


def _reply(method, **kw):
    async def scenario():
        async with Harness(_one, **kw.pop("table", {})) as h:
            h.send(request(method, h.uac_port, h.proxy_port, b"rr-" + method, **kw))
            return await h.uac.recv()

    return run(scenario())


def test_it_refuses_zero_max_forwards():
    async def scenario():
        async with Harness(_one) as h:
            raw = request(b"INVITE", h.uac_port, h.proxy_port, b"mf0").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
            h.send(raw)
            resp = await h.uac.recv(skip=())
            assert (resp.code, resp.reason) == (483, b"Too Many Hops")

    run(scenario())


def test_it_has_no_registrar():
    resp = _reply(b"REGISTER")
    assert (resp.code, resp.reason) == (404, b"No registrar")


def test_it_answers_options_to_itself():
    assert _reply(b"OPTIONS").code == 200


def test_it_says_not_here_to_in_dialog_requests_without_our_route():
    resp = _reply(b"BYE", to_tag=b"x")
    assert (resp.code, resp.reason) == (404, b"Not Here")


def test_it_refuses_an_untrusted_source():
    resp = _reply(b"INVITE", table={"trusted_networks": ["10.0.0.0/8"]})
    assert resp.code == 403


def test_it_answers_400_naming_the_bad_header():
    async def scenario():
        async with Harness(_one) as h:
            raw = request(b"INVITE", h.uac_port, h.proxy_port, b"bad").replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE")
            h.send(raw)
            h.send(b"\x00\xffjunk")
            resp = await h.uac.recv(skip=())
            assert resp.code == 400 and b"CSeq" in resp.reason
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"after"))
            assert (await h.uac.recv()).code == 200  # still serving

    run(scenario())


def test_it_sheds_invites_past_the_pending_cap():
    def silent(ports):
        return [dest(1, ports[0])], ports[:1]

    async def scenario():
        async with Harness(silent, max_pending_invites=1, trying_timeout_ms=5000) as h:
            h.invite(b"cap-1")
            await h.uas[h.dest_ports[0]].recv()
            h.invite(b"cap-2")
            resp = await h.uac.recv()
            assert resp.code == 503 and resp.call_id == b"cap-2" and resp.get(b"retry-after")
            assert h.core.accounting.totals["shed"] == 1

    run(scenario())
