"""A SIP server on TCP that hangs up the way Asterisk's pjsip does, in a thread of the test process.

SIPp cannot play this part: its TCP server mode shares one socket among the calls the proxy sends
over its one connection, and refuses to send a call's BYE anywhere else. pjsip answers on the
connection the INVITE came in on, then sends its BYE to the top Record-Route (the proxy's public
TCP address), over a connection of its own: it knows the proxy's connection only by that
connection's ephemeral port.
"""

import asyncio
import itertools
import threading

from sip.framing import StreamFramer
from sip.headers import name_addr, split_commas
from sip.message import parse_message
from sip.responses import response_bytes
from sip.uri import parse_uri


class TcpAsterisk:
    """Answers INVITE 200 (Record-Route copied), and `hold_s` after the ACK sends the BYE on a
    new connection; counts the 200s its BYEs got."""

    def __init__(self, port, hold_s=0.3):
        self.port = port
        self.hold_s = hold_s
        self.invites = 0
        self.byes_ok = 0
        self.errors = []
        self._tags = itertools.count(1)
        self._dialogs = {}  # call-id -> (route set, caller's contact, caller's From, our To)
        self._ready = threading.Event()
        self._loop = None
        self._server = None
        self._thread = threading.Thread(target=self._run, name=f"tcp-asterisk-{port}", daemon=True)

    def start(self):
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"TCP server on {self.port} did not start")
        return self

    def stop(self):
        if self._loop is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _close(self):
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self, reader, writer):
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for raw in framer.feed(data):
                    self._on(parse_message(raw, stream=True), writer)
        except (ConnectionResetError, BrokenPipeError):
            pass
        except Exception as exc:  # noqa: BLE001 - the test reads these
            self.errors.append(repr(exc))
        writer.close()

    def _on(self, msg, writer):
        if msg.method == b"OPTIONS":
            writer.write(response_bytes(msg, 200, b"OK"))
        elif msg.method == b"INVITE":
            self.invites += 1
            tag = b"ast%d" % next(self._tags)
            rr = msg.get_all(b"record-route")
            self._dialogs[msg.call_id] = (rr, msg.uri_of(b"contact"), msg.get(b"from"), msg.get(b"to") + b";tag=" + tag)
            extra = [b"Record-Route: " + v for v in rr] + [b"Contact: <sip:127.0.0.1:%d;transport=tcp>" % self.port]
            writer.write(response_bytes(msg, 200, b"OK", to_tag=tag, extra=extra))
        elif msg.method == b"ACK":
            dialog = self._dialogs.pop(msg.call_id, None)
            if dialog is not None:
                self._loop.call_later(self.hold_s, lambda: self._loop.create_task(self._hang_up(msg.call_id, *dialog)))
        elif msg.method == b"BYE":
            writer.write(response_bytes(msg, 200, b"OK"))

    async def _hang_up(self, call_id, rr, contact, caller, us):
        top = parse_uri(name_addr(split_commas(rr[0], "Record-Route")[0])[0])
        try:
            reader, writer = await asyncio.open_connection(top.host, top.port)
        except OSError as exc:
            self.errors.append(f"BYE {call_id!r}: connect {top.host!r}:{top.port}: {exc}")
            return
        routes = b"".join(b"Route: " + r + b"\r\n" for r in rr)
        bye = (
            b"BYE " + contact + b" SIP/2.0\r\n"
            b"Via: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-bye-%s\r\n"
            % (self.port, call_id)
            + b"Max-Forwards: 70\r\n"
            + routes
            + b"From: "
            + us
            + b"\r\nTo: "
            + caller
            + b"\r\n"
            b"Call-ID: " + call_id + b"\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        )
        writer.write(bye)
        framer = StreamFramer()
        try:
            while data := await asyncio.wait_for(reader.read(65536), 5):
                for raw in framer.feed(data):
                    resp = parse_message(raw, stream=True)
                    if resp.code == 200:
                        self.byes_ok += 1
                        return
                    if resp.code >= 300:
                        self.errors.append(f"BYE {call_id!r}: {resp.code}")
                        return
        except TimeoutError:
            self.errors.append(f"BYE {call_id!r}: no answer")
        finally:
            writer.close()
