"""Network namespaces for tests that need more than one host: a bridge in a "switch" namespace,
one namespace per host wired to it by a veth pair, addresses from 10.250.0.0/24 that exist only
inside them. Nothing here touches the host's own interfaces, addresses or routes: both ends of
every veth are created directly in our namespaces, and the test process itself never opens a
socket towards these addresses except from a thread that joined one of them (`in_netns`).
"""

import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

CLONE_NEWNET = 0x40000000
SUBNET = "10.250.0"
PREFIX = 24
_libc = ctypes.CDLL(None, use_errno=True)


def program(name):
    """A system program's path: on PATH, else where Debian puts root's tools (a user's PATH may lack sbin)."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


IP = program("ip") or "ip"


def ip(*args, check=True):
    return subprocess.run([IP, *args], capture_output=True, text=True, check=check, timeout=10)


def missing_capability():
    """Why this machine cannot run namespace tests (None when it can): asked, not assumed."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth pairs, keepalived); CI runs as root"
    try:
        probe = f"lbcap-{uuid.uuid4().hex[:6]}"
        done = ip("netns", "add", probe, check=False)
    except FileNotFoundError:
        return "no `ip` command (apt-get install iproute2)"
    if done.returncode != 0:
        return f"`ip netns add` fails here: {done.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def in_netns(name, fn, *args):
    """Run fn(*args) in a thread that joined network namespace `name` and return its result.
    setns() moves only the calling thread, and a socket stays in the namespace it was made in."""
    out = {}

    def run():
        try:
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {name}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{name}")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class NsProcess:
    """A command run inside a namespace (`ip netns exec` execs it: our pid is the command's)."""

    def __init__(self, ns, argv, log_path, env=None):
        self.ns = ns
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [IP, "netns", "exec", ns, *self.argv],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log.close()

    def tail(self, chars=3000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class Topology:
    """Namespaces <prefix>-<role> on one bridge; `close()` ends what ran in them and deletes them."""

    def __init__(self):
        self.prefix = f"lbt{uuid.uuid4().hex[:6]}"
        self.switch = self.ns("sw")
        self.names = []
        self.addrs = {}
        self.procs = []
        self._add(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def ns(self, role):
        return f"{self.prefix}-{role}"

    def _add(self, name):
        ip("netns", "add", name)
        self.names.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def host(self, role, last_octet):
        """A namespace with eth0 on the bridge at 10.250.0.<last_octet>/24; returns its name."""
        name = self.ns(role)
        self._add(name)
        port = f"p-{role}"[:15]
        ip("link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", port, "netns", self.switch)
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        addr = f"{SUBNET}.{last_octet}"
        ip("-n", name, "addr", "add", f"{addr}/{PREFIX}", "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")
        self.addrs[role] = addr
        return name

    def sysctl(self, role, setting):
        sysctl = program("sysctl") or "sysctl"
        subprocess.run([IP, "netns", "exec", self.ns(role), sysctl, "-q", "-w", setting], check=True, timeout=10)

    def has_addr(self, role, addr):
        return f" {addr}/" in ip("-n", self.ns(role), "-o", "addr", "show", "dev", "eth0").stdout

    def run(self, role, argv, log_path, env=None):
        proc = NsProcess(self.ns(role), argv, log_path, env)
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout=3)
            except Exception:  # noqa: BLE001 - teardown must reach every process and namespace
                pass
        for name in reversed(self.names):
            # Children of what we started (keepalived's scripts, say) die with their namespace's
            # last users: whatever still runs in it was started by us, through those processes.
            pids = ip("netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            if pids:
                time.sleep(0.1)
            ip("netns", "del", name, check=False)
