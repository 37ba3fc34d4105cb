"""Start SIPp processes and read what they counted, for the end-to-end tests and bench/.

Counting is SIPp's own: `-trace_counts` (messages per scenario line) and `-trace_stat`
(successful/failed calls), both dumped every second and once more when SIPp exits.
"""

import csv
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SIPP = os.environ.get("SIPP", "sipp")


class SippError(AssertionError):
    pass


class Sipp:
    """One SIPp process, run in its own directory so its trace files are easy to find."""

    def __init__(self, scenario, workdir, args, name):
        self.scenario = Path(scenario) if os.path.sep in str(scenario) else SCENARIOS / scenario
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.args = [SIPP, "-sf", str(self.scenario), *args]
        self.out = open(self.workdir / "stdout.txt", "wb")
        self.proc = subprocess.Popen(
            self.args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT
        )

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise SippError(f"{self.name}: SIPp still running after {timeout}s ({' '.join(self.args)})") from None

    def stop(self, timeout=10):
        """Graceful: SIGUSR1 makes SIPp refuse new calls, finish its calls and dump final counts."""
        if self.alive():
            self.proc.send_signal(signal.SIGUSR1)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.out.close()

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def _file(self, suffix):
        found = sorted(self.workdir.glob(f"{self.scenario.stem}_{self.pid}_{suffix}"))
        return found[-1] if found else None

    def counts(self):
        """Last -trace_counts row summed by "<message>_<what>", e.g. counts()["INVITE_Recv"]."""
        return _sum_columns(self.counts_by_line())

    def counts_by_line(self):
        """Last -trace_counts row as SIPp names it: "<scenario line>_<message>_<what>", e.g. "4_200_Recv"."""
        return _last_row(self._file("counts.csv"))

    def count(self, column):
        return int(self.counts_by_line().get(column, 0))

    def stats(self):
        """Last -trace_stat row: raw column -> value (e.g. "SuccessfulCall(C)")."""
        return _last_row(self.workdir / "stat.csv")

    def errors(self, limit=2000):
        path = self._file("errors.log")
        return path.read_text(errors="replace")[:limit] if path else ""

    def screen(self, limit=4000):
        path = self.workdir / "stdout.txt"
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""

    def rtt(self):
        """Setup times in ms from -trace_rtt (response time 1: INVITE sent to 200 received)."""
        path = self._file("rtt.csv")
        if path is None:
            return []
        values = []
        with open(path, newline="") as fh:
            for row in csv.reader(fh, delimiter=";"):
                if len(row) >= 3 and row[2].strip() == "1":
                    try:
                        values.append(float(row[1]))
                    except ValueError:
                        pass
        return values

    def describe(self):
        return f"{self.name} rc={self.proc.returncode}\n--- errors ---\n{self.errors()}\n--- screen ---\n{self.screen(1500)}"


def _last_row(path):
    if path is None or not Path(path).exists():
        return {}
    with open(path, newline="") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    header = lines[0].split(";")
    return dict(zip(header, lines[-1].split(";")))


def _sum_columns(row):
    totals = {}
    for key, value in row.items():
        head, _, rest = key.partition("_")
        if not head.isdigit() or not rest:
            continue
        try:
            totals[rest] = totals.get(rest, 0) + int(value)
        except ValueError:
            pass
    return totals


def uas_args(port, transport="udp"):
    args = ["-i", "127.0.0.1", "-p", str(port), "-nostdin", "-trace_counts", "-trace_err", "-fd", "1", "-buff_size", "1048576"]
    if transport == "tcp":
        args += ["-t", "t1"]
    return args


def uac_args(
    target, port, *, calls, rate, hold_ms, transport="udp", service="lbtest", recv_timeout_ms=None, limit=None, extra=()
):
    args = [
        target,
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-s",
        service,
        "-nostdin",
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-d",
        str(hold_ms),
        "-pause_msg_ign",
        "-buff_size",
        "1048576",
        "-trace_counts",
        "-trace_stat",
        "-stf",
        "stat.csv",
        "-trace_err",
        "-trace_rtt",
        "-rtt_freq",
        "1",
        "-fd",
        "1",
    ]
    if limit:
        args += ["-l", str(limit)]
    if transport == "tcp":
        args += ["-t", "t1"]
    if recv_timeout_ms:
        args += ["-recv_timeout", str(recv_timeout_ms)]
    return [*args, *extra]


def wait_udp_sip(port, deadline_s=5.0):
    """Ready when the peer on `port` answers an OPTIONS: an event, not a guess."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        lport = sock.getsockname()[1]
        msg = (
            f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:ready@127.0.0.1:{lport}>;tag={call_id[:8]}\r\nTo: <sip:ping@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            sock.sendto(msg, ("127.0.0.1", port))
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if data.startswith(b"SIP/2.0 200"):
                return
    raise SippError(f"nothing answered OPTIONS on udp 127.0.0.1:{port} within {deadline_s}s")


def wait_tcp(port, deadline_s=5.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SippError(f"nothing listens on tcp 127.0.0.1:{port} within {deadline_s}s")
