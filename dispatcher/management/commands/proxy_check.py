"""`manage.py proxy_check`: keepalived's check script (exit 0 = this node may hold the floating address).

Never touches the database: keepalived runs it every second or two, and PostgreSQL being slow
is no reason to move the address. Also the notify hook: `--report master` records what
keepalived says about this node, for the panel's Proxies table.
"""

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from dispatcher.redis_client import connect, redis_target
from lbcore.contract import NODE_TTL_SECONDS, VRRP_STATES, encode_vrrp, vrrp_key
from proxy import cli
from proxy.check import CheckFailed, check, holders


class Command(BaseCommand):
    help = (
        "Exit 0 when the local proxy answers SIP OPTIONS on its socket (the first UDP --listen, else TCP; "
        "a wildcard address is asked on loopback) and its heartbeat lb:node:<name> in Redis is fresh; "
        "exit 1 with a one-line reason otherwise. A Redis that cannot be reached is said but does not fail "
        "the check (the proxy routes from its last table meanwhile). With --report STATE (keepalived's "
        "notify: master, backup, fault, stop) it records that state for this node instead and prints "
        "which nodes hold the floating address; --report alone only prints that."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--listen",
            action="append",
            metavar="PROTO:HOST:PORT",
            help="the proxy's sockets, as given to runproxy (default: $SIP_LISTEN or udp+tcp 127.0.0.1:5060)",
        )
        parser.add_argument("--node-name", help="the proxy's name in lb:node:<name> (default: $LBPANEL_NODE_NAME or hostname)")
        parser.add_argument("--redis-url", help="Redis holding the heartbeats (default: $REDIS_URL)")
        parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for the OPTIONS answer and Redis (1)")
        parser.add_argument(
            "--max-age",
            type=float,
            default=float(NODE_TTL_SECONDS),
            help=f"oldest heartbeat still fresh, in seconds ({NODE_TTL_SECONDS}: its TTL)",
        )
        parser.add_argument(
            "--report",
            nargs="?",
            const="",
            type=str.lower,  # keepalived's generic notify script gets MASTER, BACKUP, FAULT, STOP
            choices=("", *VRRP_STATES),
            metavar="STATE",
            help="record keepalived's state for this node (" + ", ".join(VRRP_STATES) + ") and print who holds the address",
        )

    def handle(self, *args, **options):
        name = cli.node_name(options["node_name"])
        timeout = options["timeout"]
        # REDIS_URL's server, or with REDIS_SENTINELS the master now: where the proxy writes its heartbeat.
        target = cli.redis_target(options["redis_url"], None, None, redis_target())
        client = connect(target, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            if options["report"] is not None:
                self._report(client, name, options["report"])
                return
            try:
                listen = cli.listen_specs(options["listen"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            try:
                line = check(listen, name, client, timeout=timeout, max_age=options["max_age"])
            except CheckFailed as exc:
                raise CommandError(f"{name}: {exc}", returncode=1) from None
            if options["verbosity"] > 0:
                self.stdout.write(line)
        finally:
            client.close()

    def _report(self, client, name, state):
        try:
            if state:
                client.set(vrrp_key(name), encode_vrrp(name, state))
            lines = holders(client)
        except RedisError as exc:
            raise CommandError(f"{name}: Redis unreachable: {exc}") from None
        for line in lines or ["no proxy is reporting"]:
            self.stdout.write(line)
