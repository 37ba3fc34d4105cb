"""The noisy neighbour: N processes that each spin one CPU flat out, started for a step and killed after.

Fixed work, not a fixed share: each burner is a plain busy loop at the default nice level, so it
competes with the proxy, Kamailio and SIPp exactly as a busy co-tenant (a Celery batch, a backup,
another VM on the same host) would.
"""

import signal
import subprocess
import sys

SPIN = "while True:\n    pass\n"


class Burner:
    def __init__(self, count):
        self.count = count
        self.procs = []

    def describe(self):
        return f"{self.count} CPU burner process{'es' if self.count != 1 else ''} running"

    def start(self):
        self.stop()
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL))

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)
        self.procs = []
