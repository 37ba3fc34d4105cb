"""A Redis master, its replica and three Sentinels on loopback, and the e2e cluster pointed at them.

The cluster helpers are tests/e2e_proxy's; here `redis` and `redis_url` mean the Sentinel-managed
master, and settings point the panel's client at the sentinels (REDIS_SENTINELS), as production would.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis as redis_lib

from tests.e2e_proxy import conftest as e2e

# The e2e cluster's fixtures, under their own names so pytest finds them here too.
cluster_factory, ports = e2e.cluster_factory, e2e.ports

MASTER_NAME = "lbtest"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_SENTINEL = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"


class RedisProcess:
    def __init__(self, name, args, workdir):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.proc.pid

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.log.close()

    def tail(self, chars=1500):
        return f"--- {self.name} ---\n" + self.log_path.read_text(errors="replace")[-chars:]


class SentinelGroup:
    """Master at ports.base+4, replica at +5, sentinels at +6..+8 (the block's spare ports)."""

    def __init__(self, tmp_path, ports):
        self.dir = tmp_path / "sentinel"
        self.dir.mkdir()
        self.master_port, self.replica_port = ports.base + 4, ports.base + 5
        self.sentinel_ports = [ports.base + 6, ports.base + 7, ports.base + 8]
        taken = [p for p in (self.master_port, self.replica_port, *self.sentinel_ports) if not _listenable(p)]
        if taken:
            raise RuntimeError(f"ports {taken} are in use: LBPANEL_TEST_PORT_BASE's block is not ours")
        self.procs = []
        self.master = self._redis("master", self.master_port)
        self.replica = self._redis("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for n, port in enumerate(self.sentinel_ports, 1):
            conf = self.dir / f"sentinel{n}.conf"
            # Sentinel rewrites its file with what it learns (replicas, peers, epochs): one each.
            conf.write_text(
                f'port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile ""\ndir {self.dir}\n'
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 3000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self.procs.append(RedisProcess(f"sentinel{n}", [REDIS_SENTINEL, str(conf)], self.dir))

    def _redis(self, name, port, *extra):
        workdir = self.dir / name
        workdir.mkdir()
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""]
        args += ["--appendonly", "no", *extra]
        proc = RedisProcess(name, args, workdir)
        self.procs.append(proc)
        return proc

    @property
    def addresses(self):
        return [("127.0.0.1", p) for p in self.sentinel_ports]

    def env(self):
        """The variables the panel, the workers and runproxy read."""
        return {
            "REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in self.addresses),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    def direct(self, port):
        return redis_lib.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)

    def master_port_now(self):
        """The master's port as a majority of the sentinels reports it."""
        seen = {}
        for _, port in self.addresses:
            try:
                addr = self.direct(port).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis_lib.RedisError:
                continue
            if addr:
                seen[int(addr[1])] = seen.get(int(addr[1]), 0) + 1
        best = max(seen.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= 2 else None

    def wait_ready(self, deadline_s=20.0):
        """Every sentinel sees the replica and both other sentinels, and the replica is in sync."""
        end = time.monotonic() + deadline_s
        state = None
        while time.monotonic() < end:
            try:
                info = self.direct(self.replica_port).info("replication")
                state = [self.direct(p).sentinel_master(MASTER_NAME) for _, p in self.addresses]
                if info.get("master_link_status") == "up" and all(
                    s["num-slaves"] >= 1 and s["num-other-sentinels"] >= 2 for s in state
                ):
                    return
            except redis_lib.RedisError as exc:
                state = exc
            time.sleep(0.1)
        raise RuntimeError(f"sentinels not ready within {deadline_s}s: {state}\n{self.tails()}")

    def wait_failover(self, deadline_s=20.0):
        """Until the sentinels name the replica as master; its port."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.master_port_now() == self.replica_port:
                return self.replica_port
            time.sleep(0.05)
        raise RuntimeError(f"no failover to the replica within {deadline_s}s\n{self.tails()}")

    def tails(self):
        return "\n".join(p.tail() for p in self.procs)

    def close(self):
        for proc in reversed(self.procs):
            proc.kill()


def _listenable(port):
    """Redis can listen on `port` (it sets SO_REUSEADDR: a previous run's TIME_WAIT does not stop it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def sentinels(tmp_path, ports):
    if not os.path.exists(REDIS_SENTINEL):
        pytest.skip("redis-sentinel is not installed: apt-get install -y redis-sentinel (make test-deps)")
    group = SentinelGroup(tmp_path, ports)
    try:
        group.wait_ready()
        yield group
    finally:
        group.close()


@pytest.fixture
def redis_url(sentinels):
    # With sentinels set, the URL gives only the db: its host and port are ignored.
    return f"redis://127.0.0.1:{sentinels.master_port}/0"


@pytest.fixture
def redis(sentinels, redis_url, settings):
    """The panel's own client, through the sentinels: publishes and heartbeat reads follow the master."""
    from dispatcher.redis_client import get_redis

    settings.REDIS_URL = redis_url
    settings.REDIS_SENTINELS = tuple(f"{h}:{p}" for h, p in sentinels.addresses)
    settings.REDIS_SENTINEL_MASTER = MASTER_NAME
    settings.REDIS_SENTINEL_PASSWORD = None
    yield get_redis()
