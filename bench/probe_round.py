"""Probe round benchmark: one Celery worker probes 1,000 destinations in one round.

    .venv/bin/python bench/probe_round.py [--destinations 1000] [--rounds 5] [--timeout-ms 1000]

What it runs, all on 127.0.0.1: a responder process answering SIP OPTIONS on
--ports ports (destinations spread over them, one URI each), a real worker
(`celery -A lbpanel worker`) on its own PostgreSQL database and Redis db, and:
  raw      probes.prober.probe_all in this process: sockets only, no Celery, DB or Redis
  round    the probes.run_round task, timed inside the worker (load, claim, probe,
           record) and from here (send -> result)
  silent   the same with 10% of destinations silent: a round can not end before the timeout
  tcp      every destination over TCP (a connection per probe)
  fan-out  one probes.probe_now task per destination instead of one round, for comparison
Reports each scenario's round duration, the ratio to the raw baseline of the same
invocation, and the worker's CPU seconds per round (utime+stime from /proc).
Target (issue 4): a round of 1,000 under 2 s with a 1 s timeout.

It refuses to run against a database holding anything but 127.0.0.1 destinations.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.celery_process import CeleryProcess  # noqa: E402
from tests.celery_process import child_env as celery_child_env  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/lbpanel_bench_probes"
QUEUE = f"bench-probes-{os.getpid()}"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--destinations", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--timeout-ms", type=int, default=1000)
    p.add_argument("--ports", type=int, default=10, help="responder ports the destinations are spread over")
    p.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("LBPANEL_BENCH_PORT_BASE") or os.environ.get("LBPANEL_TEST_PORT_BASE") or 23000),
    )
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    )
    p.add_argument("--skip", action="append", default=[], choices=("silent", "tcp", "fanout"))
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "probe_round.json"))
    return p.parse_args()


def ensure_database(url):
    import psycopg
    from dj_database_url import parse

    cfg = parse(url)
    if "bench" not in cfg["NAME"]:
        sys.exit(f"refusing {cfg['NAME']!r}: the probe bench empties its database, so its name must contain 'bench'")
    admin = dict(
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with psycopg.connect(**admin) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (cfg["NAME"],)).fetchone():
            conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')


def child_env(args):
    return celery_child_env(args.database_url, args.redis_url, QUEUE, log_level="WARNING")


def setup_django(args):
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        DJANGO_SETTINGS_MODULE="lbpanel.settings",
        LBPANEL_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()


def make_destinations(args, transport="udp"):
    from django.db import transaction

    from dispatcher.models import Destination, DispatcherSet, ProbeSettings, StateEvent

    foreign = Destination.objects.exclude(uri__contains="@127.0.0.1:")
    if foreign.exists():
        sys.exit(f"refusing: the bench database holds non-loopback destinations, e.g. {foreign.first().uri}")
    with transaction.atomic():
        StateEvent.objects.all().delete()
        Destination.objects.all().delete()
        dset, _ = DispatcherSet.objects.get_or_create(setid=1, defaults={"name": "bench"})
        suffix = ";transport=tcp" if transport == "tcp" else ""
        Destination.objects.bulk_create(
            Destination(
                dset=dset,
                uri=f"sip:{'quiet' if i % 10 == 0 else 'ast'}{i}@127.0.0.1:{args.port_base + i % args.ports}{suffix}",
                probing=True,
            )
            for i in range(args.destinations)
        )
        settings = ProbeSettings.load()
        settings.ping_timeout_ms = args.timeout_ms
        settings.ping_interval = 3600  # rounds are started by the bench, never by a tick
        settings.probing_threshold, settings.inactive_threshold, settings.ping_reply_codes, settings.probing_mode = 3, 1, "", 1
        settings.save()


class Responder:
    def __init__(self, args, transport, silent):
        cmd = [
            sys.executable,
            "-m",
            "probes.tests.responder",
            "--port",
            str(args.port_base),
            "--count",
            str(args.ports),
            "--transport",
            transport,
        ]
        if silent:
            cmd += ["--silent-prefix", "quiet"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(args))
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            sys.exit(f"responder did not start: {line!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            self.proc.wait(10)


class Worker(CeleryProcess):
    def __init__(self, args):
        super().__init__(
            "bench",
            [
                "worker",
                "--pool=threads",
                "--concurrency=4",
                "-Q",
                QUEUE,
                "-n",
                f"bench-{os.getpid()}@localhost",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            child_env(args),
            " ready.",
        )
        try:
            self.wait_ready()
        except RuntimeError as exc:
            sys.exit(str(exc))

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_baseline(args, transport, rounds):
    from dispatcher.models import Destination
    from probes.prober import ProbeConfig, Target, probe_all
    from probes.rounds import run_async
    from sip.uri import parse_uri

    targets = []
    for dest_id, uri in Destination.objects.values_list("id", "uri"):
        u = parse_uri(uri)
        targets.append(Target(dest_id, uri, u.host, u.effective_port, u.transport))
    config = ProbeConfig(timeout=args.timeout_ms / 1000)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        outcomes = run_async(probe_all(targets, config))  # the worker's own loop (uvloop)
        times.append(time.perf_counter() - start)
    return times, sum(o.code == 200 for o in outcomes)


def run_rounds(app, worker, rounds):
    app.send_task("probes.run_round", args=[None], queue=QUEUE).get(timeout=60)  # warm-up: imports, connections
    results, wall = [], []
    cpu0 = worker.cpu_seconds()
    for _ in range(rounds):
        start = time.perf_counter()
        results.append(app.send_task("probes.run_round", args=[None], queue=QUEUE).get(timeout=60))
        wall.append(time.perf_counter() - start)
    cpu = (worker.cpu_seconds() - cpu0) / rounds
    return results, wall, cpu


def run_fanout(app, worker, n):
    from dispatcher.models import Destination

    ids = list(Destination.objects.values_list("id", flat=True)[:n])
    cpu0 = worker.cpu_seconds()
    start = time.perf_counter()
    pending = [app.send_task("probes.probe_now", args=[i, "bench"], queue=QUEUE) for i in ids]
    for result in pending:
        result.get(timeout=120)
    return time.perf_counter() - start, worker.cpu_seconds() - cpu0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    args = parse_args()
    ensure_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=child_env(args), check=True)
    setup_django(args)
    import redis
    from celery import Celery

    r = redis.Redis.from_url(args.redis_url)
    for key in r.scan_iter("lb:*", count=1000):
        r.delete(key)
    app = Celery("bench", broker=args.redis_url, backend=args.redis_url)
    report = {
        "destinations": args.destinations,
        "timeout_ms": args.timeout_ms,
        "ports": args.ports,
        "cpus": os.cpu_count(),
        "scenarios": {},
    }
    worker = Worker(args)
    try:
        scenarios = [("round", "udp", False), ("silent", "udp", True), ("tcp", "tcp", False)]
        for name, transport, silent in scenarios:
            if name in args.skip:
                continue
            make_destinations(args, transport)
            responder = Responder(args, transport, silent)
            try:
                raw, answered = raw_baseline(args, transport, 3)
                results, wall, cpu = run_rounds(app, worker, args.rounds)
            finally:
                responder.stop()
            in_worker = [x["duration_s"] for x in results]
            report["scenarios"][name] = {
                "transport": transport,
                "silent": args.destinations // 10 if silent else 0,
                "raw_probe_s": round(median(raw), 4),
                "raw_answered": answered,
                "round_s": round(median(in_worker), 4),
                "round_max_s": round(max(in_worker), 4),
                "rounds_s": [round(x, 4) for x in in_worker],
                "changes_per_round": [len(x["transitions"]) for x in results],
                "probe_phase_s": round(median([x["probe_s"] for x in results]), 4),
                "send_to_result_s": round(median(wall), 4),
                "ratio_to_raw": round(median(in_worker) / median(raw), 2),
                "worker_cpu_s_per_round": round(cpu, 3),
                "probed": results[-1]["probed"],
                "good": results[-1]["good"],
            }
        if "fanout" not in args.skip:
            make_destinations(args, "udp")
            responder = Responder(args, "udp", False)
            try:
                elapsed, cpu = run_fanout(app, worker, args.destinations)
            finally:
                responder.stop()
            round_s = report["scenarios"].get("round", {}).get("round_s")
            report["scenarios"]["fanout"] = {
                "transport": "udp",
                "tasks": args.destinations,
                "all_done_s": round(elapsed, 3),
                "worker_cpu_s": round(cpu, 3),
                "ratio_to_round": round(elapsed / round_s, 1) if round_s else None,
            }
    finally:
        worker.stop()
        from dispatcher.models import Destination

        Destination.objects.all().delete()
    print_report(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    ok = report["scenarios"].get("round", {}).get("round_s", 0) < 2.0
    return 0 if ok else 1


def print_report(report):
    print(
        f"probe round bench: {report['destinations']} destinations, timeout {report['timeout_ms']} ms, "
        f"{report['ports']} responder ports, {report['cpus']} CPUs"
    )
    print(f"{'scenario':10} {'raw s':>8} {'round s':>8} {'max s':>8} {'x raw':>6} {'cpu s':>7} {'good':>6}")
    for name, s in report["scenarios"].items():
        if name == "fanout":
            print(
                f"{name:10} {s['tasks']} probe_now tasks: all done in {s['all_done_s']} s "
                f"({s['ratio_to_round']}x one round), worker CPU {s['worker_cpu_s']} s"
            )
            continue
        print(
            f"{name:10} {s['raw_probe_s']:8.3f} {s['round_s']:8.3f} {s['round_max_s']:8.3f} {s['ratio_to_raw']:6.2f} "
            f"{s['worker_cpu_s_per_round']:7.3f} {s['good']:6d}"
        )


if __name__ == "__main__":
    sys.exit(main())
