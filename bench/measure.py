"""One ladder step: N calls at a rate through a target, read back from SIPp's own counters."""

import resource
import statistics
from dataclasses import dataclass

from tests.e2e_proxy.sippctl import Sipp, uac_args

# uac.xml scenario lines: 4 is the 200 for the INVITE, 8 the 200 for the BYE.
INVITE_OK, BYE_OK = "4_200_Recv", "8_200_Recv"


@dataclass
class Step:
    target: str
    rate: int
    calls: int
    successful: int = 0
    failed: int = 0
    answered: int = 0
    setup_median_ms: float | None = None
    setup_p99_ms: float | None = None
    cpu_s: float | None = None
    sipp_cpu_s: float | None = None  # the harness's own share of the box: the UAC and the servers
    wall_s: float = 0.0
    ring_median_ms: float | None = None  # INVITE -> 180 on the wire (bench.pcap), at the capture rate only
    ring_p99_ms: float | None = None

    @property
    def failed_pct(self):
        return 100.0 * (self.calls - self.successful) / self.calls if self.calls else 0.0

    @property
    def passed(self):
        return self.failed_pct < 0.1

    @property
    def cpu_per_1000(self):
        if self.cpu_s is None or not self.successful:
            return None
        return 1000.0 * self.cpu_s / self.successful

    @property
    def sipp_cpu_per_1000(self):
        if self.sipp_cpu_s is None or not self.successful:
            return None
        return 1000.0 * self.sipp_cpu_s / self.successful


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100.0 * len(ordered) + 0.5) - 1))]


def run_calls(target, workdir, *, uac_port, rate, seconds, hold_ms, recv_timeout_ms=10000, on_start=None):
    """Drive `rate` calls/s for `seconds` through target.port; return (Step, the finished Sipp)."""
    calls = int(rate * seconds)
    args = uac_args(
        f"127.0.0.1:{target.port}",
        uac_port,
        calls=calls,
        rate=rate,
        hold_ms=hold_ms,
        recv_timeout_ms=recv_timeout_ms,
        extra=["-timeout", str(int(seconds + hold_ms / 1000 + 40)), "-max_recv_loops", "10000", "-max_sched_loops", "10000"],
    )
    cpu_before = target.cpu()
    sipp_before = _children_cpu() + target.servers.cpu()
    uac = Sipp("uac.xml", workdir, args, f"uac {target.name} {rate}/s")
    if on_start is not None:
        on_start(uac)
    uac.wait(seconds + hold_ms / 1000 + 90)
    cpu_after = target.cpu()
    sipp_after = _children_cpu() + target.servers.cpu()  # the UAC has been waited for: a child's rusage
    stats = uac.stats()
    step = Step(target=target.name, rate=rate, calls=calls)
    step.successful = int(stats.get("SuccessfulCall(C)", 0) or 0)
    step.failed = int(stats.get("FailedCall(C)", 0) or 0)
    step.answered = uac.count(INVITE_OK)
    setups = uac.rtt()
    if setups:
        step.setup_median_ms = statistics.median(setups)
        step.setup_p99_ms = percentile(setups, 99)
    if cpu_before is not None:
        step.cpu_s = cpu_after - cpu_before
    step.sipp_cpu_s = sipp_after - sipp_before
    return step, uac
