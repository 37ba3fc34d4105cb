"""The failover runs: 50 calls/s for 40 s with production timers; at 10 s ast2 dies, at 25 s it is back.

Two ways to die, each run for every proxy:
- `kill`: SIGKILL, then a fresh SIPp on the same port. The port is closed meanwhile, so senders
  get ICMP port-unreachable (a crashed Asterisk on a live host).
- `stop`: SIGSTOP, then SIGCONT. The port stays bound and the kernel queues what arrives: no
  ICMP, nothing comes back (a hung Asterisk, a host that lost power).
Counts failed calls (before and after their 200), calls up on ast2 when it died, and the new
INVITEs sent to ast2 while it was dead, captured on loopback without binding its port."""

import json
import time
from pathlib import Path

import redis as redis_lib

from bench.capture import InviteCounter
from bench.measure import BYE_OK, INVITE_OK, percentile
from bench.targets import Kamailio, OurProxy, proxy_extra
from tests.e2e_proxy.sippctl import Sipp, uac_args

KILL_AT, RESTART_AT = 10.0, 25.0
DEAD = 2
MODES = {"kill": "SIGKILL", "stop": "SIGSTOP"}


def run_one(target, workdir, args, redis_url, mode="kill"):
    rate, seconds = args.failover_rate, args.failover_seconds
    calls = int(rate * seconds)
    dead_port = target.servers.ports[DEAD]
    counter = InviteCounter(dead_port)
    uac_port = target.port + 10
    extra = ["-timeout", str(int(seconds + 60))]
    uac = Sipp(
        "uac.xml",
        Path(workdir) / "uac",
        uac_args(f"127.0.0.1:{target.port}", uac_port, calls=calls, rate=rate, hold_ms=1000, recv_timeout_ms=35000, extra=extra),
        f"uac failover {target.name}",
    )
    t0 = time.monotonic()
    try:
        time.sleep(max(0.0, t0 + KILL_AT - time.monotonic()))
        active_at_kill = _proxy_active(target, redis_url)
        if mode == "stop":
            target.servers.pause(DEAD)
        else:
            target.servers.kill(DEAD)
        t_kill = time.monotonic()
        time.sleep(max(0.0, t0 + RESTART_AT - time.monotonic()))
        if mode == "stop":
            target.servers.resume(DEAD)
        else:
            target.servers.start(DEAD)
        t_restart = time.monotonic()
    finally:
        target.servers.resume(DEAD)
    uac.wait(seconds + 120)
    t_end = time.monotonic()
    counter.close()
    answered, ended = uac.count(INVITE_OK), uac.count(BYE_OK)
    stats = uac.stats()
    setups = uac.rtt()
    dead_datagrams, dead_calls = counter.between(t_kill, t_restart)
    first_5s = counter.between(t_kill, t_kill + 5.0)[1]
    _, after_restart = counter.between(t_restart, t_end)
    return {
        "target": f"{target.name} {MODES[mode]}",
        "calls": calls,
        "successful": int(stats.get("SuccessfulCall(C)", 0) or 0),
        "failed": int(stats.get("FailedCall(C)", 0) or 0),
        "failed_before_answer": calls - answered,
        "failed_after_answer": answered - ended,
        "proxy_active_on_dead_at_kill": active_at_kill,
        "new_invites_to_dead": dead_calls,
        "new_invites_to_dead_first_5s": first_5s,
        "invite_datagrams_to_dead": dead_datagrams,
        "new_invites_after_restart": after_restart,
        "setup_p99_ms": percentile(setups, 99),
        "setup_max_ms": max(setups) if setups else None,
        "setups_over_1s": sum(1 for s in setups if s > 1000),
    }


def _proxy_active(target, redis_url):
    """What the proxy's last heartbeat says is up on the server about to die (ours only)."""
    if not isinstance(target, OurProxy):
        return None
    client = redis_lib.Redis.from_url(redis_url)
    name = target.proxy.node_name
    # with --processes N each worker is a node: <name>, <name>-1, ...
    try:
        keys = [f"lb:node:{name}"] + [k.decode() for k in client.scan_iter(match=f"lb:node:{name}-*")]
        found = [json.loads(raw) for raw in client.mget(keys) if raw]
    except redis_lib.RedisError as exc:
        # an informative column: under the burners Redis once stalled past redis-py's 5 s socket
        # timeout, and that ended a 25-minute --full run before its last table
        print(f"(the proxy's count of calls up on ast{DEAD} unread: {exc})", flush=True)
        return None
    finally:
        client.close()
    if not found:
        return None
    return sum(n.get("destinations", {}).get(str(DEAD), {}).get("active", 0) for n in found)


def make_target(name, base, stepdir, redis_url, scenario="uas.xml"):
    if name == "kamailio":
        return Kamailio(base, stepdir, scenario=scenario)
    # The seed's production timers; probes (15 s x 3) are the Celery prober's, not run here.
    target = OurProxy(
        base, stepdir, redis_url, extra=proxy_extra(name), scenario=scenario, fr_timer_ms=5000, fr_inv_timer_ms=30000
    )
    target.name = name
    return target


def run_all(args, workdir, burner=None):
    names = [t for t in args.targets.split(",") if t == "kamailio" or t.startswith("lbpanel")]
    if "kamailio" in names and not Kamailio.installed():
        names.remove("kamailio")
    modes = [m for m in getattr(args, "failover_modes", "kill,stop,ring").split(",") if m in MODES]
    if not modes:
        return []
    print(
        f"failover: {args.failover_rate} calls/s for {args.failover_seconds:g} s, 1 s hold, fr_timer 5 s, "
        f"ast{DEAD} dies at {KILL_AT:g} s (SIGKILL: restarted; SIGSTOP: SIGCONT) and is back at {RESTART_AT:g} s"
        + (f"; {burner.describe()}" if burner else "")
    )
    rows = []
    i = 0
    for mode in modes:
        for name in names:
            base = args.port_base + 900 + 20 * (i % 2)
            i += 1
            stepdir = Path(workdir) / f"failover-{name}-{mode}{'-burner' if burner else ''}"
            stepdir.mkdir(parents=True)
            target = make_target(name, base, stepdir, args.redis_url)
            if burner:
                burner.start()
            try:
                rows.append(run_one(target, stepdir, args, args.redis_url, mode))
            finally:
                if burner:
                    burner.stop()
                target.stop()
    keys = [
        ("calls", "calls"),
        ("failed", "failed calls"),
        ("failed_before_answer", "failed before answer"),
        ("failed_after_answer", f"failed after answer (up on ast{DEAD} when it died)"),
        ("proxy_active_on_dead_at_kill", f"proxy's own count of calls up on ast{DEAD} then"),
        ("new_invites_to_dead", f"new INVITEs sent to dead ast{DEAD}"),
        ("new_invites_to_dead_first_5s", "... of them in the first 5 s"),
        ("invite_datagrams_to_dead", f"INVITE datagrams to dead ast{DEAD} (with retransmissions)"),
        ("new_invites_after_restart", f"INVITEs to ast{DEAD} after it came back"),
        ("setups_over_1s", "calls whose setup took > 1 s"),
        ("setup_p99_ms", "setup p99 ms"),
        ("setup_max_ms", "setup max ms"),
    ]
    print_table(rows, keys)
    return rows


def print_table(rows, keys):
    """One column per run (its "target"), one row per (key, label); a missing figure as "-"."""
    print("| | " + " | ".join(r["target"] for r in rows) + " |")
    print("| --- |" + " ---: |" * len(rows))
    for key, label in keys:
        print(f"| {label} | " + " | ".join("-" if r[key] is None else str(r[key]) for r in rows) + " |")
