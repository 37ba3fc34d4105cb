"""`python -m proxy` and `manage.py runproxy`: ready line, serving, clean exit on SIGTERM."""

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.cli import listen_specs
from proxy.tests.harness import port_block

ROOT = Path(__file__).resolve().parents[2]


def _wait_line(proc, needle, deadline=15.0):
    """Read stderr unbuffered (a buffered readline can hide lines from select)."""
    fd = proc.stderr.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    text = ""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not sel.select(timeout=0.2):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        text += chunk.decode(errors="replace")
        for line in text.splitlines():
            if needle in line:
                return line
    raise AssertionError(f"no {needle!r} in proxy output: {text[-2000:]}")


def _options(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.bind(("127.0.0.1", 0))
    me = s.getsockname()[1]
    s.sendto(
        (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKcli{time.time_ns()}\r\n"
            f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: cli-{me}\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode(),
        ("127.0.0.1", port),
    )
    data = s.recv(4096)
    s.close()
    return data.split(b"\r\n")[0]


@pytest.mark.parametrize("how", ["module", "manage"])
def test_it_starts_serves_and_stops_cleanly(how, redis_url):
    port = next(port_block())
    args = [
        "--listen",
        f"udp:127.0.0.1:{port}",
        "--listen",
        f"tcp:127.0.0.1:{port}",
        "--redis-url",
        redis_url,
        "--node-name",
        f"cli-{how}",
    ]
    cmd = [sys.executable, "-m", "proxy", *args] if how == "module" else [sys.executable, "manage.py", "runproxy", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        line = _wait_line(proc, "proxy ready")
        assert "table version=" in line
        assert _options(port) == b"SIP/2.0 200 OK"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_it_reads_listen_specs_from_the_environment(monkeypatch):
    monkeypatch.setenv("SIP_LISTEN", "udp:127.0.0.1:5070, tcp:[::1]:5071")
    assert listen_specs(None) == [("udp", "127.0.0.1", 5070), ("tcp", "::1", 5071)]
    monkeypatch.delenv("SIP_LISTEN")
    assert listen_specs(None) == [("udp", "127.0.0.1", 5060), ("tcp", "127.0.0.1", 5060)]


def test_it_names_a_bad_listen_spec():
    with pytest.raises(ValueError, match="sctp:1.2.3.4:5060"):
        listen_specs(["sctp:1.2.3.4:5060"])


def test_runproxy_asks_celery_to_probe_a_destination_it_marks_suspect(redis, redis_url, settings):
    import json

    from lbcore.contract import TABLE_KEY, encode_table

    ports = port_block()
    port, dead = next(ports), next(ports)  # nothing listens on `dead`: ICMP port unreachable
    dest = {"id": 7, "setid": 1, "uri": f"sip:127.0.0.1:{dead}", "host": "127.0.0.1", "port": dead, "transport": "udp"}
    redis.set(TABLE_KEY, encode_table(1, [{"setid": 1, "name": "out", "algorithm": 4, "destinations": [dest]}], [], {}))
    args = ["--listen", f"udp:127.0.0.1:{port}", "--redis-url", redis_url, "--node-name", "cli-probe"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runproxy", *args], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env
    )
    try:
        _wait_line(proc, "proxy ready")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        me = s.getsockname()[1]
        s.sendto(
            (
                f"INVITE sip:svc@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKprobe{me}\r\n"
                f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: probe-{me}\r\nCSeq: 1 INVITE\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        end = time.monotonic() + 10
        raw = None
        while time.monotonic() < end and raw is None:
            raw = redis.lpop(queue)
            time.sleep(0.05)
        s.close()
        assert raw is not None, "no Celery task reached the broker"
        headers = json.loads(raw)["headers"]
        assert headers["task"] == "probes.probe_now"
        assert headers["argsrepr"].startswith("[7, ")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
