"""Real TLS for the tests: a CA and certificates made with the openssl CLI, the in-process
proxy with a tls listener, and a scripted SIP server and client over TLS (Python's ssl)."""

import asyncio
import ssl
import subprocess
from dataclasses import replace

from lbcore.contract import DestinationSpec
from proxy import tls
from proxy.server import _bind
from proxy.tests.harness import Harness, table
from proxy.tests.tcp_support import port_is_free
from sip.framing import StreamFramer
from sip.message import parse_message
from sip.responses import response_bytes


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _key(name, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", f"{name}.key", cwd=cwd)


def make_ca(cwd, name):
    _key(name, cwd)
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=cwd,
    )  # fmt: skip
    return cwd / f"{name}.crt"


def make_leaf(cwd, name, ca, san):
    """A certificate for `san` (e.g. "IP:127.0.0.1,DNS:localhost") signed by CA `ca`: (cert, key)."""
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)
    (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip
    return cwd / f"{name}.crt", cwd / f"{name}.key"


class Pki:
    """Our CA with the proxy's and a server's certificate; a rogue CA with a server certificate
    for the same address; a server certificate of our CA for another address."""

    def __init__(self, cwd):
        self.ca = make_ca(cwd, "ca")
        self.proxy = make_leaf(cwd, "proxy", "ca", "IP:127.0.0.1,DNS:localhost")
        self.server = make_leaf(cwd, "server", "ca", "IP:127.0.0.1,DNS:localhost")
        self.other_ip = make_leaf(cwd, "otherip", "ca", "IP:127.0.0.2")
        make_ca(cwd, "rogue")
        self.rogue = make_leaf(cwd, "rogueserver", "rogue", "IP:127.0.0.1,DNS:localhost")

    def config(self, handshake_timeout=tls.HANDSHAKE_TIMEOUT_S):
        return tls.build(str(self.proxy[0]), str(self.proxy[1]), str(self.ca), True, handshake_timeout)

    def server_context(self, pair=None):
        cert, key = pair or self.server
        return tls.server_context(str(cert), str(key))

    def client_context(self):
        return tls.client_context(str(self.ca))


def tls_dest(id, port, host="127.0.0.1", uri=None, **kw):
    return DestinationSpec(
        id=id, setid=1, uri=uri or f"sip:{host}:{port};transport=tls", host=host, port=port, transport="tls", **kw
    )


class TlsHarness(Harness):
    """The UDP harness plus a tls listener at the same port number, with `pki`'s proxy certificate.
    `dests_fn(ports)` -> (destinations, live UDP ports), as for Harness."""

    def __init__(self, pki, dests_fn, handshake_timeout=tls.HANDSHAKE_TIMEOUT_S, **table_kw):
        self.pki = pki
        self.tls = pki.config(handshake_timeout)  # before the loop runs: loading certificates takes a moment
        for _ in range(10):
            super().__init__(dests_fn, **table_kw)
            if all(port_is_free(p) for p in (self.proxy_port, self.uac_port, *self.dest_ports)):
                return
        raise RuntimeError("no block of 10 free ports for a TLS harness (LBPANEL_TEST_PORT_BASE)")

    async def __aenter__(self):
        await super().__aenter__()
        loop = asyncio.get_running_loop()
        self.core.pool.tls = self.tls
        self.tls_listener, self.tls_server = await _bind(self.core, loop, "tls", "127.0.0.1", self.proxy_port)
        self.core.add_listener(self.tls_listener)
        # again, now that there is a tls listener to name in Via and Record-Route
        self.core.apply_table(replace(table(self.dests_fn(self.dest_ports)[0], **self.table_kw), version=2))
        self.servers = []
        return self

    async def __aexit__(self, *exc):
        for s in self.servers:
            s.close()
        self.tls_server.close()
        await super().__aexit__(*exc)

    async def tls_uas(self, port, pair=None):
        uas = await TlsUas(port, self.pki.server_context(pair), self.pki.client_context()).start()
        self.servers.append(uas)
        return uas


class TlsStream:
    """One TLS connection carrying SIP: framed reads, the messages in a queue."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.messages = asyncio.Queue()
        self.lport = writer.get_extra_info("sockname")[1]
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, port, context, host="127.0.0.1"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=host)
        return cls(reader, writer)

    async def _read(self):
        framer = StreamFramer()
        try:
            while data := await self.reader.read(65536):
                for raw in framer.feed(data):
                    self.messages.put_nowait(parse_message(raw, stream=True))
        except (ConnectionResetError, ssl.SSLError):
            pass

    def send(self, data):
        self.writer.write(data)

    async def recv(self, within=5.0, skip=(100,)):
        while True:
            msg = await asyncio.wait_for(self.messages.get(), within)
            if msg.code not in skip:
                return msg

    def close(self):
        self.task.cancel()
        self.writer.close()


class TlsUas:
    """A SIP server on TLS: answers INVITE and BYE 200 (Contact with transport=tls); counts the
    connections it accepted; can open its own TLS connection to send a request."""

    def __init__(self, port, server_ctx, client_ctx):
        self.port = port
        self.server_ctx = server_ctx
        self.client_ctx = client_ctx
        self.requests = asyncio.Queue()
        self.connections = 0
        self.streams = []
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.server_ctx)
        return self

    async def _serve(self, reader, writer):
        self.connections += 1
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for raw in framer.feed(data):
                    msg = parse_message(raw, stream=True)
                    if msg.method is not None:
                        self._answer(msg, writer)
                        self.requests.put_nowait(msg)
        except (ConnectionResetError, ssl.SSLError):
            pass
        writer.close()

    def _answer(self, req, writer):
        if req.method == b"ACK":
            return
        extra = [b"Record-Route: " + v for v in req.get_all(b"record-route")]
        extra.append(b"Contact: <sip:uas@127.0.0.1:%d;transport=tls>" % self.port)
        writer.write(response_bytes(req, 200, b"OK", to_tag=b"uas", extra=extra))

    async def recv(self, within=5.0):
        return await asyncio.wait_for(self.requests.get(), within)

    async def connect(self, port, host="127.0.0.1"):
        """A TLS connection of ours to the proxy's listener, verifying the proxy's certificate."""
        stream = await TlsStream.open(port, self.client_ctx, host)
        self.streams.append(stream)
        return stream

    def close(self):
        for s in self.streams:
            s.close()
        if self.server is not None:
            self.server.close()
