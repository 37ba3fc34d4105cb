"""SIP over TLS: the proxy's certificate, how it verifies servers, and the handshakes.

The files are paths on the proxy's own host, so they are runproxy options (or environment
variables), not table settings: a path typed into the panel would mean nothing on another node.
Both contexts are Python's ssl module defaults (TLS 1.2 or later, no compression); verification
of servers is on unless turned off explicitly, against the system CAs or one CA file.

Inbound handshakes run after the TCP accept has passed the connection caps
(transport.TcpPool.admit), so a peer that opens connections and never finishes a handshake holds
a counted place under tcp_max_connections / tcp_max_per_ip, and loses it after the handshake
timeout.
"""

import logging
import os
import ssl
from dataclasses import dataclass

log = logging.getLogger("proxy.tls")

HANDSHAKE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TlsConfig:
    server: ssl.SSLContext | None  # None: no certificate, so no tls listener
    client: ssl.SSLContext
    handshake_timeout: float = HANDSHAKE_TIMEOUT_S
    verify: bool = True


def server_context(cert, key):
    """The context our tls listeners present; ValueError naming the file that is wrong."""
    for what, path in (("certificate", cert), ("key", key)):
        if not os.path.isfile(path):
            raise ValueError(f"TLS {what} file {path}: not found")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        # OpenSSL does not say which of the two files it choked on: try the certificate alone
        raise ValueError(f"TLS certificate {cert} / key {key}: {_which_file(cert, key, exc)}") from None
    except OSError as exc:
        raise ValueError(f"TLS certificate {cert} / key {key}: {exc.strerror or exc}") from None
    return ctx


def _which_file(cert, key, exc):
    probe = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        probe.load_verify_locations(cert)
    except ssl.SSLError:
        return f"{cert} holds no PEM certificate ({exc.reason or exc})"
    return f"{key} is not a PEM private key for this certificate ({exc.reason or exc})"


def client_context(ca_file=None, verify=True, cert=None, key=None):
    """How we connect to servers: verify their certificate and host name unless `verify` is
    False; `ca_file` None means the system CAs. Our own certificate, when we have one, is offered
    to servers that ask for a client certificate."""
    if ca_file and not os.path.isfile(ca_file):
        raise ValueError(f"TLS CA file {ca_file}: not found")
    try:
        # a CA file replaces the system CAs: servers are then trusted only if that CA signed them
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    except ssl.SSLError as exc:
        raise ValueError(f"TLS CA file {ca_file}: no PEM certificate in it ({exc.reason or exc})") from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def build(cert=None, key=None, ca_file=None, verify=True, handshake_timeout=HANDSHAKE_TIMEOUT_S):
    """TlsConfig from the option values; ValueError (one line, naming the file) when unusable."""
    if bool(cert) != bool(key):
        raise ValueError("TLS needs both a certificate file and a key file (--tls-cert and --tls-key)")
    server = server_context(cert, key) if cert else None
    if not verify:
        log.warning("TLS certificate verification of servers is OFF: anyone on the path can pose as a server")
    return TlsConfig(server, client_context(ca_file, verify, cert, key), float(handshake_timeout), verify)


def env_bool(name, default):
    """'on'/'off' style environment flag; ValueError on a value it does not understand."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{name}={raw!r}: expected on or off")


def prober_client_context():
    """The client context the OPTIONS prober verifies servers with: the same LBPANEL_TLS_CA and
    LBPANEL_TLS_VERIFY the proxy reads, so a server the proxy trusts is the one probed."""
    return client_context(os.environ.get("LBPANEL_TLS_CA") or None, env_bool("LBPANEL_TLS_VERIFY", True))


def handshake_failure(exc):
    """(counter name, reason a person can act on) for an exception out of a TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "handshake_failed", f"certificate verify failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return "handshake_failed", f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionAbortedError | TimeoutError):
        return "handshake_timeout", "TLS handshake not finished in time"
    return "handshake_failed", f"TLS handshake failed: {exc.strerror or exc or type(exc).__name__}"
