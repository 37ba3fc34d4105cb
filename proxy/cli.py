"""Command-line options shared by `python -m proxy` and `manage.py runproxy`."""

import logging
import os
import socket
import sys

from lbcore.redistarget import RedisTarget
from proxy.tls import HANDSHAKE_TIMEOUT_S, env_bool
from proxy.transport import parse_advertise, parse_listen

DEFAULT_LISTEN = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")


def add_arguments(parser):
    parser.add_argument(
        "--listen",
        action="append",
        metavar="PROTO:HOST:PORT",
        help="socket to serve SIP on, repeatable (default: $SIP_LISTEN or udp+tcp 127.0.0.1:5060)",
    )
    parser.add_argument(
        "--advertise",
        metavar="HOST[:PORT]",
        help="address put in Via and Record-Route instead of the socket's own, e.g. the floating address "
        "both nodes of a cluster share (default: $LBPANEL_ADVERTISE; port: each listener's own)",
    )
    parser.add_argument("--node-name", help="name of this proxy in lb:node:<name> (default: $LBPANEL_NODE_NAME or hostname)")
    parser.add_argument("--redis-url", help="Redis holding lb:table and lb:health")
    parser.add_argument(
        "--redis-sentinels",
        metavar="HOST:PORT,...",
        help="ask these Redis Sentinels where the master is (default: $REDIS_SENTINELS); --redis-url then gives the db",
    )
    parser.add_argument("--redis-sentinel-master", metavar="NAME", help="the master's name (default: $REDIS_SENTINEL_MASTER)")
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("LBPANEL_PROXY_PROCESSES", "1")),
        help="proxy processes behind the one UDP address, each call kept in one of them (default 1; see proxy/sharding.py)",
    )
    parser.add_argument(
        "--steering",
        choices=("auto", "bpf", "reader"),
        default=os.environ.get("LBPANEL_PROXY_STEERING", "auto"),
        help="with --processes, how a datagram finds the worker holding its call: bpf (a kernel Call-ID hash; "
        "needs CAP_BPF), reader (a parent process hands them over), auto (bpf where the kernel allows it; "
        "default: $LBPANEL_PROXY_STEERING or auto)",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="PEM certificate (chain) tls listeners present (default: $LBPANEL_TLS_CERT)"
    )
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert (default: $LBPANEL_TLS_KEY)")
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="PEM CA certificates TLS servers are verified against (default: $LBPANEL_TLS_CA, else the system CAs)",
    )
    parser.add_argument(
        "--tls-verify",
        choices=("on", "off"),
        help="verify TLS servers' certificates and host names (default: $LBPANEL_TLS_VERIFY or on)",
    )
    parser.add_argument(
        "--tls-handshake-timeout",
        type=float,
        metavar="SECONDS",
        help=f"drop a TLS connection whose handshake is not done by then (default: {HANDSHAKE_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--log-level", default=os.environ.get("LBPANEL_LOG_LEVEL", "INFO"), help="DEBUG, INFO, WARNING (default INFO)"
    )


def listen_specs(values):
    """--listen values, else SIP_LISTEN (comma-separated), else the defaults; ValueError names the bad one."""
    if not values:
        env = os.environ.get("SIP_LISTEN", "").strip()
        values = [v for v in env.split(",") if v.strip()] if env else list(DEFAULT_LISTEN)
    return [parse_listen(v) for v in values]


def advertise(value):
    """--advertise, else LBPANEL_ADVERTISE, as (host, port or None); None when neither is set."""
    value = value or os.environ.get("LBPANEL_ADVERTISE", "").strip()
    return parse_advertise(value) if value else None


def tls_config(options, listen):
    """The TlsConfig from --tls-* options (a dict) over LBPANEL_TLS_* variables, None without a
    certificate. ValueError, one line naming the file or option, when the files are unusable or a
    tls listener has no certificate."""
    from proxy import tls  # noqa: PLC0415 (ssl contexts only when asked for)

    env = os.environ.get
    cert = options.get("tls_cert") or env("LBPANEL_TLS_CERT") or None
    key = options.get("tls_key") or env("LBPANEL_TLS_KEY") or None
    ca = options.get("tls_ca") or env("LBPANEL_TLS_CA") or None
    verify = options["tls_verify"] == "on" if options.get("tls_verify") else env_bool("LBPANEL_TLS_VERIFY", True)
    timeout = options.get("tls_handshake_timeout") or float(env("LBPANEL_TLS_HANDSHAKE_TIMEOUT_S") or HANDSHAKE_TIMEOUT_S)
    if timeout <= 0:
        raise ValueError("--tls-handshake-timeout must be more than 0 seconds")
    tls_listen = [f"tls:{h}:{p}" for proto, h, p in listen if proto == "tls"]
    if tls_listen and not cert:
        raise ValueError(f"listen {tls_listen[0]} needs a certificate and key (--tls-cert, --tls-key)")
    if not cert and not key:
        if ca:
            tls.client_context(ca, verify)  # still refuse a CA file that cannot be used
        # no tls listener, so TLS destinations are unusable anyway (no TLS address for Via and
        # Record-Route): no contexts, nothing loaded
        return None
    return tls.build(cert, key, ca, verify, timeout)


def redis_target(url, sentinels, master, default):
    """--redis-url/--redis-sentinels/--redis-sentinel-master over `default` (the RedisTarget settings
    or the environment give); ValueError names what is wrong."""
    return RedisTarget.build(
        url or default.url, sentinels or default.sentinels, master or default.master, default.sentinel_password
    )


def env_redis_target():
    """REDIS_URL and the Sentinel variables, for `python -m proxy` (runproxy takes them from settings)."""
    return RedisTarget.build(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get("REDIS_SENTINELS", ""),
        os.environ.get("REDIS_SENTINEL_MASTER", ""),
        os.environ.get("REDIS_SENTINEL_PASSWORD"),
    )


def node_name(value):
    return value or os.environ.get("LBPANEL_NODE_NAME") or socket.gethostname()


def setup_logging(level):
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, str(level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(listen, redis_url, name, suspect_hooks=(), advertise=None, processes=1, tls=None, steering="auto"):
    from proxy import memory, schedslice  # noqa: PLC0415 (see above)

    memory.settle()  # before the tables fill: the heap then grows in large steps (proxy/memory.py)
    try:
        slice_us = schedslice.slice_us()
    except ValueError as exc:
        logging.getLogger("proxy").error("%s", exc)
        raise SystemExit(1) from None
    schedslice.request(slice_us)  # before the fork: the reader and every worker have it
    if processes > 1:
        from proxy import sharding  # noqa: PLC0415 (see above)

        def worker(w):  # in a forked child: its own event loop, its own node name
            run_one(listen, redis_url, name if w.index == 0 else f"{name}-{w.index}", suspect_hooks, advertise, w, tls)

        sharding.run(listen, processes, worker, steering)
        return
    run_one(listen, redis_url, name, suspect_hooks, advertise, tls=tls)


def run_one(listen, redis_url, name, suspect_hooks=(), advertise=None, worker=None, tls=None):
    import asyncio  # noqa: PLC0415 (see above)

    import uvloop  # noqa: PLC0415 (see above)

    from lbcore import sipdns  # noqa: PLC0415 (see above)
    from proxy.server import serve  # noqa: PLC0415 (argument parsing and --help need no event loop, Redis or uvloop)

    try:
        sipdns.nameservers(os.environ.get("SIP_DNS_SERVERS"))
        sipdns.ttl_bounds()
    except ValueError as exc:
        logging.getLogger("proxy").error("%s", exc)
        raise SystemExit(1) from None
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(listen, redis_url, name, suspect_hooks, advertise=advertise, worker=worker, tls=tls))
    except OSError as exc:
        logging.getLogger("proxy").error("%s", exc.strerror or exc)
        raise SystemExit(1) from None
