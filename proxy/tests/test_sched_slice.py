"""The proxy asks the kernel for a short scheduler slice (proxy/schedslice.py): a latency hint, not
a priority. Checked in a child process, so the test runner keeps its own slice."""

import os
import platform
import subprocess
import sys

import pytest

from proxy import schedslice

KERNEL = tuple(int(p) for p in platform.release().split("-")[0].split(".")[:2])


def test_the_slice_comes_from_the_environment_within_the_kernels_bounds():
    assert schedslice.slice_us({}) == schedslice.DEFAULT_US
    assert schedslice.slice_us({"LBPANEL_SCHED_SLICE_US": "0"}) == 0
    assert schedslice.slice_us({"LBPANEL_SCHED_SLICE_US": " 300 "}) == 300
    for bad in ("50", "200000", "fast", "-1"):
        with pytest.raises(ValueError, match="LBPANEL_SCHED_SLICE_US"):
            schedslice.slice_us({"LBPANEL_SCHED_SLICE_US": bad})


@pytest.mark.skipif(KERNEL < (6, 12) or platform.machine() not in ("x86_64", "aarch64"), reason="custom slices: Linux 6.12+")
def test_the_kernel_grants_it_without_privilege_and_keeps_the_nice_level():
    code = (
        "import os; from proxy import schedslice; os.nice(3)\n"
        "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)  # no CAP_SYS_NICE behind it\n"
        "print(schedslice.request(100), schedslice.request(300), os.getpriority(os.PRIO_PROCESS, 0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["100", "300", "3"]


def test_a_bad_setting_stops_the_proxy_with_a_message_naming_it():
    env = {**os.environ, "LBPANEL_SCHED_SLICE_US": "5"}
    out = subprocess.run(
        [sys.executable, "-m", "proxy", "--listen", "udp:127.0.0.1:5999"], capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 1
    assert "LBPANEL_SCHED_SLICE_US must be 0 (kernel default) or 100-100000, got 5" in out.stderr
    assert "Traceback" not in out.stderr
