"""Run `manage.py runproxy` as a subprocess and read its heartbeat, for the e2e tests and bench/."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ProxyError(AssertionError):
    pass


class ProxyProcess:
    def __init__(self, *, port, redis_url, node_name, logdir, env=None, extra=(), wrap=()):
        self.port = port
        self.redis_url = redis_url
        self.node_name = node_name
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.extra = list(extra)
        self.wrap = list(wrap)  # a command line the proxy runs under (e.g. unshare for a resolv.conf of its own)
        self.proc = None
        self.starts = 0

    @property
    def log_path(self):
        return self.logdir / f"proxy-{self.node_name}-{self.starts}.log"

    def start(self, deadline_s=20.0):
        self.starts += 1
        args = [
            *self.wrap,
            sys.executable,
            str(ROOT / "manage.py"),
            "runproxy",
            "--listen",
            f"udp:127.0.0.1:{self.port}",
            "--listen",
            f"tcp:127.0.0.1:{self.port}",
            "--node-name",
            self.node_name,
            "--redis-url",
            self.redis_url,
            *self.extra,
        ]
        # A file, not a pipe: a chatty proxy must never block on a reader that stopped reading.
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if "proxy ready" in self.log_path.read_text(errors="replace"):
                return self
            if self.proc.poll() is not None:
                raise ProxyError(f"runproxy exited with {self.proc.returncode} before 'proxy ready':\n{self.tail()}")
            time.sleep(0.05)
        raise ProxyError(f"runproxy did not log 'proxy ready' within {deadline_s}s:\n{self.tail()}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, as systemd or docker would; SIGKILL only if it does not exit."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise ProxyError(f"runproxy ignored SIGTERM for {timeout}s:\n{self.tail()}") from None
        if self.proc is not None:
            self.log.close()

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=5)

    def tail(self, chars=3000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def cpu_seconds(self):
        """utime + stime of the proxy process so far, from /proc."""
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def node(self, redis_client):
        raw = redis_client.get(f"lb:node:{self.node_name}")
        return json.loads(raw) if raw else None

    def wait_node(self, redis_client, predicate, what, deadline_s=10.0):
        """Poll the heartbeat (written every second) until `predicate(node)` holds."""
        end = time.monotonic() + deadline_s
        node = None
        while time.monotonic() < end:
            node = self.node(redis_client)
            if node is not None and predicate(node):
                return node
            time.sleep(0.1)
        raise ProxyError(f"lb:node:{self.node_name} never showed {what} within {deadline_s}s; last heartbeat: {node}")

    def wait_table(self, redis_client, version, deadline_s=10.0):
        return self.wait_node(
            redis_client, lambda n: (n.get("table_version") or 0) >= version, f"table_version >= {version}", deadline_s
        )
