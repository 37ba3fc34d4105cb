"""Is the local proxy serving? The check keepalived runs every second or two (`manage.py proxy_check`).

Two questions, both bounded by one timeout: does the proxy answer a SIP OPTIONS on its socket
(any response will do: a 403 to an untrusted source still proves the event loop reads and
answers), and is its heartbeat in Redis (lb:node:<name>) fresh? No Django, no database: a check
that waits on PostgreSQL would move the floating address away for a reason that is not the proxy's.

A Redis that cannot be reached is reported but does not fail the check: the proxy keeps routing
from its last table while Redis is away (a Sentinel failover, say), and failing the check on
every node at once would take the floating address off the whole cluster.
"""

import json
import socket
import time
import uuid

from redis.exceptions import RedisError

from lbcore.contract import NODE_KEY_PREFIX, NODE_TTL_SECONDS, decode_node, node_key


class CheckFailed(Exception):
    """The one-line reason the check fails."""


def target(listen):
    """The (proto, host, port) to send OPTIONS to: the first UDP socket, else the first TCP one (never TLS);
    a wildcard listener is asked on loopback."""
    specs = sorted((s for s in listen if s[0] != "tls"), key=lambda s: s[0] != "udp")
    if not specs:
        # the check speaks plain UDP/TCP; a tls-only proxy needs one of those on loopback to be checked
        raise CheckFailed("no udp or tcp listen address to check" if listen else "no listen address to check")
    proto, host, port = specs[0]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return proto, host, port


def options_request(host, port, local_host, local_port, proto, call_id, branch):
    hostpart = f"[{host}]" if ":" in host else host
    local = f"[{local_host}]" if ":" in local_host else local_host
    return (
        f"OPTIONS sip:{hostpart}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{proto.upper()} {local}:{local_port};branch={branch}\r\n"
        f"From: <sip:proxy_check@{local}>;tag={branch[-8:]}\r\n"
        f"To: <sip:{hostpart}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 1\r\n"
        "User-Agent: lbpanel-proxy-check\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def ask_options(proto, host, port, timeout):
    """Send one OPTIONS and wait for its response; return the status line, or raise CheckFailed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    call_id = f"proxy-check-{uuid.uuid4().hex}"
    branch = f"z9hG4bK{uuid.uuid4().hex[:16]}"
    deadline = time.monotonic() + timeout
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        try:
            if proto == "udp":
                sock.connect((host, port))
                local_host, local_port = sock.getsockname()[:2]
                sock.send(options_request(host, port, local_host, local_port, proto, call_id, branch))
            else:
                sock.connect((host, port))
                local_host, local_port = sock.getsockname()[:2]
                sock.sendall(options_request(host, port, local_host, local_port, proto, call_id, branch))
            data = b""
            while True:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(65535)
                if not chunk:
                    raise CheckFailed(f"{proto}:{host}:{port} closed the connection without answering OPTIONS")
                data = chunk if proto == "udp" else data + chunk
                if call_id.encode() in data and b"\r\n\r\n" in data:
                    return data.split(b"\r\n", 1)[0].decode("latin-1")
        except TimeoutError:
            raise CheckFailed(f"no answer to OPTIONS from {proto}:{host}:{port} within {timeout:g} s") from None
        except OSError as exc:
            # a UDP port nobody listens on comes back as ECONNREFUSED (ICMP port unreachable)
            raise CheckFailed(f"OPTIONS to {proto}:{host}:{port} failed: {exc.strerror or exc}") from None


def heartbeat_age(client, node_name, now=None):
    """Seconds since node_name's last heartbeat; CheckFailed when there is none."""
    raw = client.get(node_key(node_name))
    if raw is None:
        raise CheckFailed(f"no heartbeat {node_key(node_name)} in Redis (proxy stopped, or another --node-name)")
    try:
        doc = decode_node(raw)
        beat = float(doc["heartbeat"])
    except (ValueError, TypeError, KeyError):
        raise CheckFailed(f"undecodable heartbeat {node_key(node_name)}") from None
    return (now if now is not None else time.time()) - beat


def check(listen, node_name, client, *, timeout=1.0, max_age=NODE_TTL_SECONDS):
    """The one line to print when the proxy is serving; CheckFailed(reason) when it is not."""
    proto, host, port = target(listen)
    status = ask_options(proto, host, port, timeout)
    try:
        age = heartbeat_age(client, node_name)
    except RedisError as exc:
        return f"ok: {proto}:{host}:{port} answered {status!r}; Redis unreachable ({exc}), heartbeat not checked"
    if age > max_age:
        raise CheckFailed(f"heartbeat of {node_name} is {age:.1f} s old (more than {max_age:g} s)")
    return f"ok: {proto}:{host}:{port} answered {status!r}; heartbeat of {node_name} {age:.1f} s old"


def holders(client):
    """Lines naming, for each live node, whether it holds the floating address (from heartbeats)."""
    keys = sorted(client.scan_iter(match=NODE_KEY_PREFIX + "*", count=100))
    lines = []
    for key, raw in zip(keys, client.mget(keys) if keys else (), strict=True):
        if raw is None:
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        held = doc.get("holds_address")
        state = {True: "holds", False: "does not hold"}.get(held, "cannot tell whether it holds")
        lines.append(f"{doc.get('name', key.decode())}: {state} {doc.get('advertise') or 'the floating address'}")
    return lines
