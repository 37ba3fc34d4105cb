"""bench/run: the rate ladder (direct, lbpanel, Kamailio), quiet and under a CPU burner, INVITE->180
from a packet capture, and the failover runs. See bench/README.md."""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lbpanel.settings")

from bench import failover, ringhang  # noqa: E402
from bench.burner import Burner  # noqa: E402
from bench.freeze import FreezeWatch  # noqa: E402
from bench.measure import run_calls  # noqa: E402
from bench.pcap import RingCapture  # noqa: E402
from bench.targets import Direct, Kamailio, OurProxy, proxy_extra  # noqa: E402

FULL = {  # bench/run --full: the whole table of issue 15 in one invocation
    "targets": "direct,lbpanel,lbpanel-2,kamailio",
    "rates": "200,1000,1600,2000,2400,2800,3200,3600,4000,5000,6000",
    "seconds": 10.0,
    "until_direct_fails": True,
    "burner": 2,
    "burner_rates": "200,1000,1600,2000",
    "burner_failover": True,  # issue 15: the failover figures under the burner too
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--full", action="store_true", help="everything issue 15 asks for, in one run (~20 min): see bench/README.md")
    p.add_argument("--rates", default="200,500,1000,1500,2000,2500", help="calls/s, comma separated")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    p.add_argument("--hold-ms", type=int, default=1000)
    p.add_argument("--targets", default=None, help="default: direct, lbpanel (and lbpanel-N when --processes), kamailio")
    p.add_argument("--until-direct-fails", action="store_true", help="after --rates, keep climbing until direct fails")
    p.add_argument("--rate-step", type=int, default=2000, help="climb by this much past --rates (--until-direct-fails)")
    p.add_argument("--max-rate", type=int, default=20000)
    p.add_argument("--burner", type=int, default=0, metavar="N", help="also run the ladder with N CPU burners running")
    p.add_argument("--burner-rates", default="200,1000,2000,2400")
    p.add_argument("--burner-failover", action="store_true", help="the failover runs under the burner too")
    p.add_argument("--pcap-rate", type=int, default=200, help="capture INVITE->180 on the wire at this rate (0: never)")
    p.add_argument("--stages", action="store_true", help="our proxy records per-stage timing (LBPANEL_STAGE_TIMING)")
    p.add_argument("--no-ladder", action="store_true")
    p.add_argument("--no-failover", action="store_true")
    p.add_argument("--failover-rate", type=int, default=50)
    p.add_argument("--failover-seconds", type=float, default=40.0)
    p.add_argument(
        "--failover-modes",
        default="kill,stop,ring",
        help="how ast2 dies: kill (SIGKILL, ICMP), stop (SIGSTOP, silence); ring: the ringing-hang run (bench/ringhang.py)",
    )
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    p.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT_BASE", "26000")))
    p.add_argument("--workdir", default=None, help="keep SIPp/proxy logs here (default: a temp dir)")
    p.add_argument(
        "--hep",
        default="",
        metavar="HOST:PORT",
        help="lbpanel copies every SIP message there as HEPv3 (hep_destination); start the receiver yourself",
    )
    p.add_argument("--stop-after-fail", type=int, default=2, help="stop a target's ladder after this many failed steps")
    args = p.parse_args(argv)
    if args.full:
        defaults = p.parse_args([])
        for key, value in FULL.items():
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
    if args.targets is None:
        args.targets = "direct,lbpanel,kamailio"
    if args.full or args.burner:
        args.burner_rates = args.burner_rates or FULL["burner_rates"]
    return args


def fmt(value, spec="{:.1f}"):
    return "-" if value is None else spec.format(value)


def make_target(name, base, stepdir, args):
    if name == "direct":
        return Direct(base, stepdir)
    if name == "kamailio":
        return Kamailio(base, stepdir)
    env = {"LBPANEL_STAGE_TIMING": str(stepdir / "stages.json")} if args.stages else None
    settings = {"hep_destination": args.hep} if args.hep else {}
    target = OurProxy(base, stepdir, args.redis_url, env=env, extra=proxy_extra(name), **settings)
    target.name = name
    return target


def rate_plan(args, rates):
    """The rates, then (until direct fails) more past them."""
    yield from rates
    if args.until_direct_fails:
        rate = rates[-1]
        while rate + args.rate_step <= args.max_rate:
            rate += args.rate_step
            yield rate


HEADER = (
    "| rate/s | target | calls | failed % | setup median ms | setup p99 ms | INVITE->180 median ms | INVITE->180 p99 ms "
    "| CPU s / 1,000 calls | SIPp CPU s / 1,000 calls | load before | host froze |"
)


def ladder(args, workdir, rates, burner=None, label="quiet"):
    names = [t for t in args.targets.split(",") if t]
    if "kamailio" in names and not Kamailio.installed():
        print("kamailio not installed: skipping it (apt-get install -y kamailio)")
        names.remove("kamailio")
    if burner is not None:
        names = [n for n in names if n != "direct"] or names
    results, failures = [], {n: 0 for n in names}
    print(
        f"\nladder ({label}): {args.seconds:g} s per step, {args.hold_ms} ms hold, rates {rates}"
        + (" then on until direct fails" if args.until_direct_fails and burner is None else "")
    )
    print(HEADER)
    print("| ---: | --- |" + " ---: |" * 10)
    step_no = getattr(args, "_step_no", 0)
    for rate in rate_plan(args, rates) if burner is None else rates:
        live = [n for n in names if failures[n] < args.stop_after_fail]
        if not live or ("direct" in names and failures.get("direct") and rate > max(r.rate for r in results)):
            break
        for name in live:
            step_no += 1
            base = args.port_base + 20 * (step_no % 40)
            stepdir = Path(workdir) / f"{step_no:03d}-{label}-{name}-{rate}"
            stepdir.mkdir(parents=True)
            load = os.getloadavg()[0]  # other work on the host skews every number: show it
            target = make_target(name, base, stepdir, args)
            capture = RingCapture(base + 10) if rate == args.pcap_rate else None
            if burner is not None:
                burner.start()
            freezes = FreezeWatch()
            freezes.start()
            try:
                step, _ = run_calls(
                    target, stepdir / "uac", uac_port=base + 10, rate=rate, seconds=args.seconds, hold_ms=args.hold_ms
                )
            finally:
                freezes.stop()
                if burner is not None:
                    burner.stop()
                if capture is not None:
                    capture.close()
                target.stop()
            step.ring_median_ms, step.ring_p99_ms, _ = capture.summary() if capture else (None, None, 0)
            legs = capture.legs_summary() if capture and args.stages and name != "direct" else None
            results.append(step)
            if not step.passed:
                failures[name] += 1
            print(
                f"| {rate} | {name} | {step.calls} | {step.failed_pct:.2f} | {fmt(step.setup_median_ms)} | "
                f"{fmt(step.setup_p99_ms)} | {fmt(step.ring_median_ms, '{:.2f}')} | {fmt(step.ring_p99_ms, '{:.2f}')} | "
                f"{fmt(step.cpu_per_1000, '{:.2f}')} | {fmt(step.sipp_cpu_per_1000, '{:.2f}')} | {load:.1f} | {freezes.describe()} |",
                flush=True,
            )
            if legs:
                print(f"<!-- INVITE->180 legs (ms): {legs} -->", flush=True)
            if args.stages and name.startswith("lbpanel"):
                for path in sorted(stepdir.glob("stages*.json")):  # one per worker with --processes
                    print_stages(path)
    args._step_no = step_no
    summary(results, names, label)
    return results


def print_stages(path):
    """One line per stage, under the step's row (bench only: LBPANEL_STAGE_TIMING)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return
    parts = []
    for name, h in doc["stages"].items():
        if h["n"]:
            parts.append(f"{name}: n={h['n']} p50={h['p50_us']} p99={h['p99_us']} p99.9={h['p999_us']} max={h['max_us']:.0f}")
    print(f"<!-- {Path(path).stem} (us): " + "; ".join(parts) + " -->", flush=True)
    stalls = doc.get("stalls") or []
    if stalls:
        worst = sorted(stalls, key=lambda s: -s["lag_ms"])[:5]
        lag = sum(s["lag_ms"] for s in stalls)
        waited = sum(s["waited_ms"] for s in stalls)
        text = ", ".join(
            f"{s['lag_ms']:.0f} ms at {s['at_s']:.1f} s (ran {s['ran_ms']:.0f}, waited {s['waited_ms']:.0f}, {s.get('messages', '?')} messages in {s.get('in_messages_ms', '?')} ms)"
            for s in worst
        )
        print(
            f"<!-- {Path(path).stem} stalls over 10 ms: {len(stalls)}, {lag:.0f} ms late in all, "
            f"{waited:.0f} ms of it waiting for a CPU; worst: {text} -->",
            flush=True,
        )


def summary(results, names, label):
    print(f"\n| target ({label}) | highest rate with < 0.1% failed | setup p99 there (ms) | CPU s / 1,000 calls there |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        passed = [s for s in results if s.target == name and s.passed]
        top = max(passed, key=lambda s: s.rate) if passed else None
        print(
            f"| {name} | {top.rate if top else 'none'} | {fmt(top.setup_p99_ms) if top else '-'} | "
            f"{fmt(top.cpu_per_1000, '{:.2f}') if top else '-'} |"
        )
    _ratios(results)


def _ratios(results):
    """Ratios against the baselines of this same invocation, rate by rate."""
    by = {(s.target, s.rate): s for s in results}
    lines = []
    for rate in sorted({s.rate for s in results}):
        kam = by.get(("kamailio", rate))
        for ours in (s for s in results if s.rate == rate and s.target.startswith("lbpanel")):
            parts = [f"{rate}/s {ours.target}:"]
            if kam and kam.cpu_per_1000 and ours.cpu_per_1000:
                parts.append(f"CPU {ours.cpu_per_1000 / kam.cpu_per_1000:.2f}x Kamailio")
            if kam and kam.setup_p99_ms and ours.setup_p99_ms is not None:
                parts.append(f"p99 setup {ours.setup_p99_ms:g} vs {kam.setup_p99_ms:g} ms")
            if len(parts) > 1:
                lines.append(" ".join(parts))
    if lines:
        print("\nratios: " + "; ".join(lines))


def main(argv=None):
    args = parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="lbpanel-bench-")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    print(f"logs in {workdir}; redis {args.redis_url}; ports from {args.port_base}; {os.cpu_count()} CPUs")
    started = time.monotonic()
    burner = Burner(args.burner) if args.burner else None
    if not args.no_ladder:
        ladder(args, workdir, [int(r) for r in args.rates.split(",") if r.strip()])
        if burner is not None:
            rates = [int(r) for r in args.burner_rates.split(",") if r.strip()]
            ladder(args, workdir, rates, burner, label=f"burner x{args.burner}")
    if not args.no_failover:
        print()
        if failover.run_all(args, workdir):
            print()
        if "ring" in args.failover_modes.split(","):
            ringhang.run_all(args, workdir)
        if burner is not None and args.burner_failover:
            print()
            failover.run_all(args, workdir, burner)
    print(f"\nbench took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
