"""The ringing-hang run: a server hangs (SIGSTOP) while it only holds ringing calls.

The failover runs keep new calls coming, so a hung server is found by the INVITEs it leaves
unanswered. Here no new INVITE goes to it: 30 calls at 10/s to three servers whose calls ring 6 s
before the answer (uas_rings.xml); once every call rings, ast2 is stopped, and resumed only after
the UAC is done (at most 60 s). A call that rang on ast2 is saved only if the proxy notices by
itself. Kamailio with the seed's config lets them ring to fr_inv_timer (30 s) and relays 408.
"""

import time
from pathlib import Path

from bench.failover import DEAD, make_target, print_table
from bench.measure import INVITE_OK, percentile
from bench.targets import Kamailio
from tests.e2e_proxy.sippctl import Sipp, uac_args

CALLS, RATE = 30, 10
SCENARIO = "uas_rings.xml"
RING_S = 6.0


def run_one(target, workdir):
    uac = Sipp(
        "uac.xml",
        Path(workdir) / "uac",
        uac_args(f"127.0.0.1:{target.port}", target.port + 10, calls=CALLS, rate=RATE, hold_ms=1000, recv_timeout_ms=45000),
        f"uac ringing-hang {target.name}",
    )
    servers = target.servers
    deadline = time.monotonic() + 20
    ringing = {}
    while time.monotonic() < deadline:  # the UAS counts are dumped every second
        ringing = {n: sipp.counts().get("180_Sent", 0) for n, sipp in servers.procs.items()}
        if sum(ringing.values()) >= CALLS:
            break
        time.sleep(0.1)
    stopped = time.monotonic()
    servers.pause(DEAD)
    try:
        uac.wait(90)
    finally:
        servers.resume(DEAD)
    took = time.monotonic() - stopped
    setups = uac.rtt()
    answered = uac.count(INVITE_OK)
    return {
        "target": target.name,
        "calls": CALLS,
        "ringing_on_dead": ringing.get(DEAD, 0),
        "failed_before_answer": CALLS - answered,
        "setup_p50_ms": percentile(setups, 50),
        "setup_max_ms": max(setups) if setups else None,
        "uac_done_s": round(took, 1),
    }


def run_all(args, workdir):
    names = [t for t in args.targets.split(",") if t == "kamailio" or t.startswith("lbpanel")]
    if "kamailio" in names and not Kamailio.installed():
        names.remove("kamailio")
    print(
        f"ringing hang: {CALLS} calls at {RATE}/s, each rings {RING_S:g} s before its answer; "
        f"once all ring, ast{DEAD} is stopped (SIGSTOP) until the caller is done"
    )
    rows = []
    for i, name in enumerate(names):
        base = args.port_base + 900 + 20 * (i % 2)
        stepdir = Path(workdir) / f"ringhang-{name}"
        stepdir.mkdir(parents=True)
        target = make_target(name, base, stepdir, args.redis_url, scenario=SCENARIO)
        try:
            rows.append(run_one(target, stepdir))
        finally:
            target.stop()
    keys = [
        ("calls", "calls"),
        ("ringing_on_dead", f"ringing on ast{DEAD} when it hung"),
        ("failed_before_answer", "failed before answer"),
        ("setup_p50_ms", "setup median ms"),
        ("setup_max_ms", "setup max ms"),
        ("uac_done_s", "caller done, s after the hang"),
    ]
    print_table(rows, keys)
    return rows
