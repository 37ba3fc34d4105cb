"""bench/run: the rate ladder (direct, lbpanel, Kamailio) and the failover run. See bench/README.md."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lbpanel.settings")

from bench import failover  # noqa: E402
from bench.measure import run_calls  # noqa: E402
from bench.targets import Direct, Kamailio, OurProxy  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--rates", default="200,500,1000,1500,2000,2500", help="calls/s, comma separated")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    p.add_argument("--hold-ms", type=int, default=1000)
    p.add_argument("--targets", default="direct,lbpanel,kamailio")
    p.add_argument("--no-ladder", action="store_true")
    p.add_argument("--no-failover", action="store_true")
    p.add_argument("--failover-rate", type=int, default=50)
    p.add_argument("--failover-seconds", type=float, default=40.0)
    p.add_argument("--failover-modes", default="kill,stop", help="how ast2 dies: kill (SIGKILL, ICMP), stop (SIGSTOP, silence)")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    p.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT_BASE", "26000")))
    p.add_argument("--workdir", default=None, help="keep SIPp/proxy logs here (default: a temp dir)")
    p.add_argument("--stop-after-fail", type=int, default=2, help="stop a target's ladder after this many failed steps")
    return p.parse_args(argv)


TARGETS = {"direct": Direct, "lbpanel": OurProxy, "kamailio": Kamailio}


def fmt(value, spec="{:.1f}"):
    return "-" if value is None else spec.format(value)


def ladder(args, workdir):
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    names = [t for t in args.targets.split(",") if t]
    if "kamailio" in names and not Kamailio.installed():
        print("kamailio not installed: skipping it (apt-get install -y kamailio)")
        names.remove("kamailio")
    results, failures = [], {n: 0 for n in names}
    print(f"ladder: {args.seconds:g} s per step, {args.hold_ms} ms hold, rates {rates}")
    print("| rate/s | target | calls | failed % | setup median ms | setup p99 ms | CPU s / 1,000 calls | load before |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    step_no = 0
    for rate in rates:
        for name in names:
            if failures[name] >= args.stop_after_fail:
                continue
            step_no += 1
            base = args.port_base + 20 * (step_no % 40)
            stepdir = Path(workdir) / f"{step_no:02d}-{name}-{rate}"
            stepdir.mkdir(parents=True)
            # Other work on the host skews every number: show the 1-minute load the step started under.
            load = os.getloadavg()[0]
            target = TARGETS[name](base, stepdir, args.redis_url)
            try:
                step, _ = run_calls(
                    target, stepdir / "uac", uac_port=base + 10, rate=rate, seconds=args.seconds, hold_ms=args.hold_ms
                )
            finally:
                target.stop()
            results.append(step)
            if not step.passed:
                failures[name] += 1
            print(
                f"| {rate} | {name} | {step.calls} | {step.failed_pct:.2f} | {fmt(step.setup_median_ms)} | "
                f"{fmt(step.setup_p99_ms)} | {fmt(step.cpu_per_1000, '{:.2f}')} | {load:.1f} |",
                flush=True,
            )
    print()
    print("| target | highest rate with < 0.1% failed | setup p99 there (ms) | CPU s / 1,000 calls there |")
    print("| --- | ---: | ---: | ---: |")
    best = {}
    for name in names:
        passed = [s for s in results if s.target == name and s.passed]
        top = max(passed, key=lambda s: s.rate) if passed else None
        best[name] = top
        print(
            f"| {name} | {top.rate if top else 'none'} | {fmt(top.setup_p99_ms) if top else '-'} | {fmt(top.cpu_per_1000, '{:.2f}') if top else '-'} |"
        )
    _ratios(results, names)
    return results


def _ratios(results, names):
    """Ratios against the baselines of this same invocation, rate by rate."""
    by = {(s.target, s.rate): s for s in results}
    rates = sorted({s.rate for s in results})
    lines = []
    for rate in rates:
        ours, direct, kam = by.get(("lbpanel", rate)), by.get(("direct", rate)), by.get(("kamailio", rate))
        if ours is None:
            continue
        parts = [f"{rate}/s:"]
        if direct and direct.setup_p99_ms:
            parts.append(f"p99 setup {ours.setup_p99_ms / direct.setup_p99_ms:.1f}x direct" if ours.setup_p99_ms else "")
        if kam and kam.cpu_per_1000 and ours.cpu_per_1000:
            parts.append(f"CPU {ours.cpu_per_1000 / kam.cpu_per_1000:.2f}x Kamailio")
        if kam and kam.setup_p99_ms and ours.setup_p99_ms:
            parts.append(f"p99 setup {ours.setup_p99_ms / kam.setup_p99_ms:.2f}x Kamailio")
        lines.append(" ".join(p for p in parts if p))
    if lines:
        print()
        print("ratios: " + "; ".join(lines))


def main(argv=None):
    args = parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="lbpanel-bench-")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    print(f"logs in {workdir}; redis {args.redis_url}; ports from {args.port_base}")
    started = time.monotonic()
    if not args.no_ladder:
        ladder(args, workdir)
    if not args.no_failover:
        print()
        failover.run_all(args, workdir)
    print(f"\nbench took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
