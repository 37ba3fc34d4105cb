"""`python -m proxy --listen udp:127.0.0.1:5060 --redis-url redis://... --node-name n1` (no Django)."""

import argparse
import sys

from proxy import cli


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m proxy", description="lbpanel SIP load-balancing proxy")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        listen = cli.listen_specs(args.listen)
        advertise = cli.advertise(args.advertise)
        tls = cli.tls_config(vars(args), listen)
    except ValueError as exc:
        parser.error(str(exc))
    cli.setup_logging(args.log_level)
    try:
        redis = cli.redis_target(args.redis_url, args.redis_sentinels, args.redis_sentinel_master, cli.env_redis_target())
    except ValueError as exc:
        parser.error(str(exc))
    cli.run(
        listen,
        redis,
        cli.node_name(args.node_name),
        advertise=advertise,
        processes=args.processes,
        tls=tls,
        steering=args.steering,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
