"""SIP_DNS_SERVERS and the TTL bounds are checked at start-up, naming the variable: by Django's settings
(the panel, the Celery worker that probes) and by `python -m proxy` (no Django)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Never bound when the check works; were it missing, the proxy would start there and the run time out.
PORT = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 25000) + 999


@pytest.mark.parametrize(
    "command",
    [["manage.py", "check"], ["-m", "proxy", "--listen", f"udp:127.0.0.1:{PORT}", "--redis-url", "redis://127.0.0.1:1/0"]],
    ids=["django", "python -m proxy"],
)
@pytest.mark.parametrize(
    "env, says",
    [
        ({"SIP_DNS_SERVERS": "dns.example.com"}, "SIP_DNS_SERVERS: 'dns.example.com' is not an IP address"),
        ({"SIP_DNS_MIN_TTL": "soon"}, "SIP_DNS_MIN_TTL='soon' is not a number of seconds"),
    ],
)
def test_a_bad_dns_setting_stops_the_start(tmp_path, command, env, says):
    base = {"LBPANEL_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, *command], env={**base, **env}, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode != 0
    assert says in proc.stderr
