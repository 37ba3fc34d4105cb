"""`manage.py proxy_check`, keepalived's check script, against a real `python -m proxy` and Redis."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lbcore.contract import encode_node, node_key, vrrp_key
from proxy.tests.harness import port_block
from proxy.tests.test_command_line import _wait_line

ROOT = Path(__file__).resolve().parents[2]


def _check(*args):
    done = subprocess.run(
        [sys.executable, "manage.py", "proxy_check", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    return done.returncode, (done.stdout + done.stderr).strip()


@pytest.fixture
def proxy(redis, redis_url):
    port = next(port_block())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "--listen",
            f"udp:127.0.0.1:{port}",
            "--listen",
            f"tcp:127.0.0.1:{port}",
            "--advertise",
            "127.0.0.9",
            "--redis-url",
            redis_url,
            "--node-name",
            "chk",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_line(proc, "proxy ready")
        end = time.monotonic() + 5
        while redis.get(node_key("chk")) is None and time.monotonic() < end:
            time.sleep(0.05)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_it_passes_when_the_proxy_answers_and_beats(proxy, redis_url):
    _, port = proxy
    rc, out = _check("--listen", f"udp:127.0.0.1:{port}", "--node-name", "chk", "--redis-url", redis_url)
    assert rc == 0, out
    assert out.startswith("ok: udp:127.0.0.1:") and "200 OK" in out and "heartbeat of chk" in out


def test_it_asks_over_tcp_when_the_proxy_listens_only_there(proxy, redis_url):
    _, port = proxy
    rc, out = _check("--listen", f"tcp:127.0.0.1:{port}", "--node-name", "chk", "--redis-url", redis_url)
    assert rc == 0, out
    assert out.startswith(f"ok: tcp:127.0.0.1:{port} answered 'SIP/2.0 200 OK'")


def test_runproxy_advertise_reaches_the_heartbeat(proxy, redis):
    """--advertise 127.0.0.9 with no port: each listener's own; on loopback nobody can tell who holds it."""
    _, port = proxy
    node = json.loads(redis.get(node_key("chk")))
    assert node["advertise"] == f"127.0.0.9:{port}" and node["holds_address"] is None
    assert node["table_applied_at"] is None  # no table published: nothing applied, nothing made up


def test_it_fails_without_a_heartbeat_of_that_name(proxy, redis_url):
    _, port = proxy
    rc, out = _check("--listen", f"udp:127.0.0.1:{port}", "--node-name", "other", "--redis-url", redis_url)
    assert rc == 1
    assert "no heartbeat lb:node:other" in out and len(out.splitlines()) == 1


def test_it_fails_on_a_stale_heartbeat(proxy, redis, redis_url):
    _, port = proxy
    doc = encode_node("old", table_version=1, started=0, pid=1, listen=[], totals={}, destinations={}, heartbeat=time.time() - 30)
    redis.set(node_key("old"), doc)
    args = ("--listen", f"udp:127.0.0.1:{port}", "--node-name", "old", "--redis-url", redis_url)
    assert _check(*args, "--max-age", "120")[0] == 0
    rc, out = _check(*args)
    assert rc == 1 and "heartbeat of old is 3" in out and "(more than 5 s)" in out


def test_it_fails_at_once_when_the_proxy_is_killed(proxy, redis_url):
    proc, port = proxy
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    rc, out = _check("--listen", f"udp:127.0.0.1:{port}", "--node-name", "chk", "--redis-url", redis_url)
    assert rc == 1 and f"udp:127.0.0.1:{port}" in out, out
    assert time.monotonic() - start < 5


def test_it_fails_within_the_timeout_when_nobody_answers(redis_url):
    """A socket that reads nothing (a stuck event loop looks the same from outside)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))
        port = mute.getsockname()[1]
        rc, out = _check("--listen", f"udp:127.0.0.1:{port}", "--node-name", "chk", "--redis-url", redis_url, "--timeout", "0.3")
    assert rc == 1 and "no answer to OPTIONS" in out and "0.3 s" in out


def test_an_unreachable_redis_does_not_fail_it(proxy):
    """Failing on every node at once while Redis is away would take the address off the cluster."""
    _, port = proxy
    rc, out = _check("--listen", f"udp:127.0.0.1:{port}", "--node-name", "chk", "--redis-url", "redis://127.0.0.1:1/0")
    assert rc == 0, out
    assert "Redis unreachable" in out and "heartbeat not checked" in out


def test_report_records_keepalived_state_and_names_the_holder(proxy, redis, redis_url):
    rc, out = _check("--report", "MASTER", "--node-name", "chk", "--redis-url", redis_url)
    assert rc == 0, out
    assert json.loads(redis.get(vrrp_key("chk")))["state"] == "master"
    assert out.startswith("chk: ")
    rc, out = _check("--report", "sideways", "--node-name", "chk", "--redis-url", redis_url)
    assert rc != 0 and "invalid choice" in out
