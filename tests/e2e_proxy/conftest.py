"""SIPp UAC -> `manage.py runproxy` -> three SIPp UAS (ast1..3), all on 127.0.0.1.

The table reaches the proxy the way production's does: dispatcher.list text through
dispatcher.services, committed (transactional_db), published to Redis after commit.
Ports come from LBPANEL_TEST_PORT_BASE (default 25000): each test takes a fresh block of 20.
"""

import itertools
import os
import shutil
import time

import pytest

from tests.e2e_proxy.proxyctl import ProxyProcess
from tests.e2e_proxy.seed_shape import make_seed_cluster
from tests.e2e_proxy.sippctl import Sipp, uac_args, uas_args, wait_tcp, wait_udp_sip
from tests.ports import is_free

PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 25000)
BLOCK = 20
_blocks = itertools.count()

WEIGHTS = {1: 50, 2: 30, 3: 20}
PRIORITIES = {1: 10, 2: 5, 3: 3}


class Ports:
    """A block of 20: proxy at +0, ast1..3 at +1..+3, UACs from +10. Blocks in use are skipped."""

    def __init__(self, port_base=PORT_BASE, blocks=_blocks):
        # 45 blocks of 20 fit in the 1,000 ports a helper or CI job is given.
        for _ in range(45):
            self.base = port_base + BLOCK * (next(blocks) % 45)
            if all(is_free(p) for p in range(self.base, self.base + 4)):
                break
        else:
            raise RuntimeError(f"no free block of {BLOCK} ports from {port_base} (LBPANEL_TEST_PORT_BASE)")
        self.proxy = self.base
        self.ast = {n: self.base + n for n in (1, 2, 3)}
        self._uac = itertools.count(self.base + 10)

    def uac(self):
        port = next(self._uac)
        assert port < self.base + BLOCK, "a test used more UAC ports than its block holds"
        return port


def dispatcher_list(ports, transports=None):
    transports = transports or {}
    lines = ["# setid destination flags priority attrs"]
    for n in (1, 2, 3):
        uri = f"sip:127.0.0.1:{ports.ast[n]}" + (";transport=tcp" if transports.get(n) == "tcp" else "")
        lines.append(f"1 {uri} 0 {PRIORITIES[n]} weight={WEIGHTS[n]};duid=ast{n}")
    return "\n".join(lines) + "\n"


class Cluster:
    """What a test drives: the proxy, the UAS by number, the destinations, and UAC runs."""

    proxy_env = None  # extra environment for the proxy process
    proxy_wrap = ()  # a command line the proxy process runs under
    proxy_extra = ()  # more runproxy arguments (e.g. --processes 2)

    def __init__(self, tmp_path, redis, redis_url, ports):
        self.tmp_path = tmp_path
        self.redis = redis
        self.redis_url = redis_url
        self.ports = ports
        self.ast = {}
        self.uas_transport = {}
        self.proxy = None
        self.version = None
        self.dests = {}
        self._procs = []
        self._runs = itertools.count(1)

    # --- servers -----------------------------------------------------------------
    def start_uas(self, n, scenario="uas.xml", transport="udp"):
        port = self.ports.ast[n]
        sipp = Sipp(scenario, self.tmp_path / f"ast{n}-{next(self._runs)}", uas_args(port, transport), f"ast{n}")
        self._procs.append(sipp)
        if transport == "tcp":
            wait_tcp(port)
        else:
            wait_udp_sip(port)
        self.ast[n] = sipp
        self.uas_transport[n] = transport
        return sipp

    def publish(self, *, algorithm=4, **proxy_settings):
        from dispatcher.models import Destination, DispatcherSet, ProxySettings
        from dispatcher.services import import_dispatcher_list, save_config

        import_dispatcher_list(self.table_text())
        dset = DispatcherSet.objects.get(setid=1)
        if dset.algorithm != algorithm:
            dset.algorithm = algorithm
            save_config(dset)
        settings = ProxySettings.load()
        settings.default_set = dset
        for key, value in proxy_settings.items():
            setattr(settings, key, value)
        save_config(settings)
        self.dests = {int(d.duid[3:]): d for d in Destination.objects.filter(dset=dset)}
        self.version = int(self.redis.get("lb:table:version"))
        return self.version

    def table_text(self):
        return dispatcher_list(self.ports, self.uas_transport)

    def start_proxy(self, node_name="e2e"):
        self.proxy = ProxyProcess(
            port=self.ports.proxy,
            redis_url=self.redis_url,
            node_name=node_name,
            logdir=self.tmp_path,
            env=self.proxy_env,
            wrap=self.proxy_wrap,
            extra=self.proxy_extra,
        )
        self._procs.append(self.proxy)
        self.proxy.start()
        self.proxy.wait_table(self.redis, self.version)
        return self.proxy

    def restart_proxy(self):
        self.proxy.stop()
        self.proxy.start()
        self.proxy.wait_table(self.redis, self.version)

    def wait_table(self, version):
        self.version = version
        return self.proxy.wait_table(self.redis, version)

    # --- callers -----------------------------------------------------------------
    def uac(self, scenario="uac.xml", *, calls, rate, hold_ms=100, transport="udp", **kwargs):
        """Start a SIPp UAC against the proxy; returns the running Sipp (call .wait())."""
        args = uac_args(
            f"127.0.0.1:{self.ports.proxy}",
            self.ports.uac(),
            calls=calls,
            rate=rate,
            hold_ms=hold_ms,
            transport=transport,
            **kwargs,
        )
        sipp = Sipp(scenario, self.tmp_path / f"uac-{next(self._runs)}", args, f"uac({scenario})")
        self._procs.append(sipp)
        return sipp

    def run_uac(self, scenario="uac.xml", *, calls, rate, timeout=60, **kwargs):
        sipp = self.uac(scenario, calls=calls, rate=rate, **kwargs)
        sipp.wait(timeout)
        return sipp

    # --- reading -----------------------------------------------------------------
    def stop_all_uas(self):
        """Graceful stop so each UAS writes its final counts."""
        for sipp in self.ast.values():
            sipp.stop()
        return {n: sipp.counts() for n, sipp in self.ast.items()}

    def wait_uas(self, predicate, what, deadline_s=10.0):
        """Poll the UAS counts (dumped every second) until predicate({n: counts}) holds."""
        end = time.monotonic() + deadline_s
        counts = {}
        while time.monotonic() < end:
            counts = {n: s.counts() for n, s in self.ast.items()}
            if predicate(counts):
                return counts
            time.sleep(0.1)
        raise AssertionError(f"UAS counts never showed {what} within {deadline_s}s: {counts}")

    def report(self, *sipps):
        parts = [s.describe() for s in sipps]
        if self.proxy is not None:
            parts.append("--- proxy log tail ---\n" + self.proxy.tail(2500))
        return "\n".join(parts)

    def close(self):
        for proc in reversed(self._procs):
            try:
                proc.kill()
            except Exception:  # noqa: BLE001 - teardown must reach every process we started
                pass


@pytest.fixture
def ports():
    return Ports()


@pytest.fixture
def cluster_factory(transactional_db, redis, redis_url, tmp_path, ports):
    """Build a cluster: cluster_factory(scenarios={2: "uas_503.xml"}, algorithm=9, fr_timer_ms=...)."""
    if shutil.which(os.environ.get("SIPP", "sipp")) is None:
        pytest.fail("sipp is not installed: apt-get install -y sip-tester (make test-deps)")
    made = []

    def make(*, scenarios=None, transports=None, algorithm=4, start_proxy=True, **proxy_settings):
        cluster = Cluster(tmp_path, redis, redis_url, ports)
        made.append(cluster)
        scenarios = scenarios or {}
        transports = transports or {}
        for n in (1, 2, 3):
            cluster.start_uas(n, scenarios.get(n, "uas.xml"), transports.get(n, "udp"))
        cluster.publish(algorithm=algorithm, **proxy_settings)
        if start_proxy:
            cluster.start_proxy()
        return cluster

    yield make
    for cluster in made:
        cluster.close()


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory()


@pytest.fixture
def seed_cluster(cluster_factory):
    """The seed's shape: ast1..3 in set 1 and set 2, the carrier (127.0.0.2) sent to set 2 (seed_shape.py)."""
    return make_seed_cluster(cluster_factory)
