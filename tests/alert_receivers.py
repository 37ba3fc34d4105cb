"""Real receivers for the alert channels, on 127.0.0.1 ports from LBPANEL_TEST_PORT_BASE + 700..799:
an HTTP server that keeps every JSON body POSTed to it, and an SMTP server (aiosmtpd) that keeps
every message. Both wait on a Condition, so a test awaits what it expects instead of sleeping."""

import itertools
import json
import logging
import os
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.ports import is_free

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 25000) + 700
_ports = itertools.count()


def free_port():
    """The next free port of the hundred, round and round: a session starts more than a hundred
    receivers (one or two a test), each stopped before the next test."""
    for _ in range(100):
        port = PORT_BASE + next(_ports) % 100
        if is_free(port, reuse_addr=True):  # both receivers bind with SO_REUSEADDR
            return port
    raise RuntimeError(f"no free port in {PORT_BASE}..{PORT_BASE + 99}")


class Inbox:
    """What a receiver got, in order; `wait_for(predicate)` returns once it holds (or raises after `timeout`)."""

    def __init__(self):
        self.items = []
        self._cond = threading.Condition()

    def add(self, item):
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout=60, what="the expected messages"):
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"never got {what}; got: {self.items!r}")
            return list(self.items)


class WebhookReceiver:
    """POST / with JSON: kept in `inbox`. `status` is what it answers (500 to play a broken receiver)."""

    def __init__(self):
        self.inbox = Inbox()
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.status == 200:
                    receiver.inbox.add(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self.port}/hook/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def bodies(self):
        return list(self.inbox.items)


class _Keep:
    def __init__(self, inbox):
        self.inbox = inbox
        self.refuse_recipients = None  # an SMTP reply such as "550 5.1.1 no such user": every RCPT TO gets it

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if self.refuse_recipients:
            return self.refuse_recipients
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = message_from_bytes(envelope.content)
        self.inbox.add(
            {"to": list(envelope.rcpt_tos), "subject": message["Subject"], "body": message.get_payload(decode=True).decode()}
        )
        return "250 OK"


class SmtpReceiver:
    """`refuse_recipients = "550 5.1.1 no such user"` plays a server that refuses every recipient."""

    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.handler = _Keep(self.inbox)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._stopped = False

    @property
    def refuse_recipients(self):
        return self.handler.refuse_recipients

    @refuse_recipients.setter
    def refuse_recipients(self, reply):
        self.handler.refuse_recipients = reply

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        if not self._stopped:  # a test may have stopped it already, to play a dead server
            self._stopped = True
            self.controller.stop()

    @property
    def messages(self):
        return list(self.inbox.items)
