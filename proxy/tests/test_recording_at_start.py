"""A proxy serves from the moment its listeners are bound, while start-up still waits (up to
READY_WAIT) for Redis. A BYE relayed in that window must still close its call's record: before,
calls were recorded only once the DialogStore existed, so a node taking over a dead one's address
(test_node_takeover) relayed the first BYEs without closing their records, and the panel counted
those calls up for ever."""

import asyncio
import socket

from proxy import server
from proxy.core import Proxy
from proxy.tests.harness import Peer, port_block, request, run


def test_a_bye_relayed_while_start_up_waits_for_redis_closes_its_record(monkeypatch):
    ports = port_block()
    proxy_port, uac_port, far_port = next(ports), next(ports), next(ports)
    hole = socket.socket()  # a "Redis" that accepts and never answers: start-up waits for it
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    monkeypatch.setattr(server, "READY_WAIT", 30.0)
    monkeypatch.setattr(server.gcpolicy, "install", lambda: None)
    cores, stores = [], []

    class SpyProxy(Proxy):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            cores.append(self)

    class SpyStore(server.DialogStore):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            stores.append(self)

    monkeypatch.setattr(server, "Proxy", SpyProxy)
    monkeypatch.setattr(server, "DialogStore", SpyStore)

    async def scenario():
        loop = asyncio.get_running_loop()
        _, uac = await loop.create_datagram_endpoint(lambda: Peer(uac_port), local_addr=("127.0.0.1", uac_port))
        stop = asyncio.Event()
        redis_url = f"redis://127.0.0.1:{hole.getsockname()[1]}/0"
        proxy = loop.create_task(server.serve([("udp", "127.0.0.1", proxy_port)], redis_url, "early", stop_event=stop))
        try:
            bye = request(
                b"BYE",
                uac_port,
                proxy_port,
                b"up-before-us",
                cseq=2,
                to_tag=b"callee",
                routes=(b"<sip:127.0.0.1:%d;lr>" % proxy_port,),
                uri=b"sip:callee@127.0.0.1:%d" % far_port,
            )
            for _ in range(200):  # bounded: until the listener serves (the proxy answers the BYE or relays it)
                if cores and cores[0].accounting.record_removals:
                    break
                uac.send(bye, proxy_port)
                await asyncio.sleep(0.02)
            assert not stores, "the DialogStore started: the window this test is about has passed"
            assert cores[0].accounting.record_removals == [b"up-before-us"]
        finally:
            stop.set()
            await asyncio.wait_for(proxy, 40)
            uac.close()

    try:
        run(scenario())
    finally:
        hole.close()
