"""What a bench run sends calls to: one SIPp UAS directly, our proxy, or Kamailio (each in front of three UAS)."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis as redis_lib

from lbcore import contract
from tests.e2e_proxy.proxyctl import ProxyProcess
from tests.e2e_proxy.sippctl import Sipp, uas_args, wait_udp_sip

BENCH_DIR = Path(__file__).resolve().parent
WEIGHTS = {1: 50, 2: 30, 3: 20}
PRIORITIES = {1: 10, 2: 5, 3: 3}


def cpu_seconds(pid):
    """utime + stime of a live process, from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


class Servers:
    """Three SIPp UAS on ports base+1..3; `restart(n)` brings one back on its port."""

    def __init__(self, base, workdir, count=3, scenario="uas.xml"):
        self.ports = {n: base + n for n in range(1, count + 1)}
        self.workdir = Path(workdir)
        self.scenario = scenario
        self.procs = {}
        self.runs = 0
        for n in self.ports:
            self.start(n)

    def start(self, n):
        self.runs += 1
        self.procs[n] = Sipp(self.scenario, self.workdir / f"ast{n}-{self.runs}", uas_args(self.ports[n]), f"ast{n}")
        wait_udp_sip(self.ports[n])

    def kill(self, n):
        self.procs[n].kill()

    def pause(self, n):
        """SIGSTOP: a hung server. Its port stays bound, so no ICMP tells anyone."""
        os.kill(self.procs[n].pid, signal.SIGSTOP)

    def resume(self, n):
        if self.procs[n].alive():
            os.kill(self.procs[n].pid, signal.SIGCONT)

    def cpu(self):
        return sum(cpu_seconds(sipp.pid) for sipp in self.procs.values())

    def stop(self):
        for n, sipp in self.procs.items():
            self.resume(n)  # a stopped SIPp would ignore the SIGUSR1 that ends it gracefully
            sipp.stop(timeout=5)


class Direct:
    """The harness limit: the UAC straight to one UAS."""

    name = "direct"

    def __init__(self, base, workdir, redis_url=None):
        self.servers = Servers(base, workdir, count=1)
        self.port = self.servers.ports[1]

    def cpu(self):
        return None

    def stop(self):
        self.servers.stop()


def publish_table(redis_url, ports, *, algorithm=4, **settings):
    """Write lb:table as the panel would (lbcore/contract.py's contract), without needing PostgreSQL."""
    client = redis_lib.Redis.from_url(redis_url)
    dests = [
        {
            "id": n,
            "setid": 1,
            "uri": f"sip:127.0.0.1:{port}",
            "host": "127.0.0.1",
            "port": port,
            "transport": "udp",
            "priority": PRIORITIES[n],
            "weight": WEIGHTS[n],
            "rweight": 0,
            "duid": f"ast{n}",
            "maxload": 0,
            "attrs": f"weight={WEIGHTS[n]};duid=ast{n}",
            "admin_state": "active",
            "probing": True,
        }
        for n, port in ports.items()
    ]
    sets = [{"setid": 1, "name": "bench", "algorithm": algorithm, "failover_codes": [500, 503], "destinations": dests}]
    client.delete(contract.HEALTH_KEY)
    # the last step's nodes and their calls: a fresh proxy would take them over as its own
    stale = [k for prefix in ("lb:node:", "lb:dialogs:", "lb:dialogcounts:") for k in client.scan_iter(match=prefix + "*")]
    if stale:
        client.delete(*stale)
    version = client.incr(contract.TABLE_VERSION_KEY)
    client.set(contract.TABLE_KEY, contract.encode_table(version, sets, [], {"default_set": 1, **settings}))
    client.publish(contract.EVENTS_CHANNEL, contract.table_event(version))
    client.close()
    return version


def proxy_extra(name):
    """lbpanel-N: runproxy --processes N, steered by the kernel's Call-ID hash (a bench must not
    measure the reader by accident where BPF would not load: it fails instead);
    lbpanel-Nr: the same with the reader process (--steering reader)."""
    _, _, n = name.partition("-")
    if not n:
        return []
    steering = "reader" if n.endswith("r") else "bpf"
    return ["--processes", n.rstrip("r"), "--steering", steering]


class OurProxy:
    name = "lbpanel"

    def __init__(self, base, workdir, redis_url, env=None, extra=(), scenario="uas.xml", **settings):
        self.servers = Servers(base, workdir, scenario=scenario)
        self.port = base
        version = publish_table(redis_url, self.servers.ports, **settings)
        self.proxy = ProxyProcess(port=base, redis_url=redis_url, node_name=f"bench-{base}", logdir=workdir, env=env, extra=extra)
        self.proxy.start()
        self.proxy.wait_table(redis_lib.Redis.from_url(redis_url), version)

    def cpu(self):
        return sum(cpu_seconds(pid) for pid in descendants(self.proxy.pid))  # the reader and its workers

    def stop(self):
        self.proxy.stop()
        self.servers.stop()


class Kamailio:
    """Kamailio with bench/kamailio/kamailio.cfg, ports and list path rewritten for this run."""

    name = "kamailio"

    @staticmethod
    def installed():
        return shutil.which("kamailio") is not None

    def __init__(self, base, workdir, redis_url=None, scenario="uas.xml"):
        self.servers = Servers(base, workdir, scenario=scenario)
        self.port = base
        workdir = Path(workdir)
        listing = (BENCH_DIR / "kamailio" / "dispatcher.list").read_text()
        for n, port in self.servers.ports.items():
            listing = listing.replace(f"127.0.0.1:{5080 + n}", f"127.0.0.1:{port}")
        (workdir / "dispatcher.list").write_text(listing)
        cfg = (BENCH_DIR / "kamailio" / "kamailio.cfg").read_text()
        cfg = cfg.replace("127.0.0.1:5060", f"127.0.0.1:{base}").replace(
            "/etc/kamailio/dispatcher.list", str(workdir / "dispatcher.list")
        )
        assert re.search(rf"listen=udp:127\.0\.0\.1:{base}\b", cfg), "kamailio.cfg must listen on 127.0.0.1:5060 for the rewrite"
        (workdir / "kamailio.cfg").write_text(cfg)
        self.log = open(workdir / "kamailio.log", "wb")
        self.proc = subprocess.Popen(
            [
                "kamailio",
                "-f",
                str(workdir / "kamailio.cfg"),
                "-DD",
                "-E",
                "-w",
                str(workdir),
                "-Y",
                str(workdir),
                "-m",
                "1024",  # shared memory, MB: with 256, tm ran out at 2,000 calls/s ("new_t(): out of mem")
                "-M",
                "16",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_udp_sip(base, deadline_s=10)

    def cpu(self):
        return sum(cpu_seconds(pid) for pid in descendants(self.proc.pid))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for pid in reversed(descendants(self.proc.pid)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(timeout=5)
        self.log.close()
        self.servers.stop()


def wait_until(predicate, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False
