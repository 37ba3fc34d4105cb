"""CPU per SIP message over TCP: `python -m proxy` answering OPTIONS on many connections.

    .venv/bin/python -m bench.tcp_bench [--root DIR] [--conns 50] [--messages 60000] [--window 20]

The UDP ladder (bench/run) never touches the TCP receive path; this does, and only it:
framing, parsing, the request route and the reply, on real sockets. `--root` runs the proxy
from another checkout (e.g. `git archive HEAD proxy sip | tar -x -C /tmp/before`), so a
before/after pair runs in one invocation on the same host. Reported: the proxy process's
utime+stime (from /proc/<pid>/stat) per 1,000 messages, and the wall time.

The proxy is given a Redis address where nothing listens, so it serves the built-in default
table (127.0.0.0/8 trusted) whatever another run left in a shared Redis database; its
reconnect attempts back off to one every few seconds, the same for every root.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def options(port, lport, n):
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{lport};branch=z9hG4bK-tcpbench-{lport}-{n}\r\n"
        f"From: <sip:bench@127.0.0.1>;tag=b{lport}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: tcpbench-{lport}-{n}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def client(port, count, window):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lport = writer.get_extra_info("sockname")[1]
    sent = 0
    while sent < count:
        batch = min(window, count - sent)
        writer.write(b"".join(options(port, lport, sent + i) for i in range(batch)))
        sent += batch
        for _ in range(batch):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"SIP/2.0 200"), head[:60]
    writer.close()


async def drive(port, conns, messages, window):
    per = messages // conns
    await asyncio.gather(*(client(port, per, window) for _ in range(conns)))
    return per * conns


def wait_listening(port, deadline):
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"proxy did not listen on {port}")


def run(root, port, conns, messages, window, redis_url):
    env = {**os.environ, "PYTHONPATH": str(root), "LBPANEL_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "--listen",
            f"tcp:127.0.0.1:{port}",
            "--redis-url",
            redis_url,
            "--node-name",
            f"tcpbench-{port}",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, time.monotonic() + 15)
        asyncio.run(drive(port, conns, 1000, window))  # warm-up
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        done = asyncio.run(drive(port, conns, messages, window))
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    finally:
        proc.kill()
        proc.wait(10)
    return done, (cpu1 - cpu0) * 1000 / done, t1 - t0


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--root", action="append", help="checkout to run the proxy from (repeatable); default this one")
    p.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT_BASE") or 26000) + 950)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--messages", type=int, default=60000)
    p.add_argument("--window", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--redis-url", default="redis://127.0.0.1:9/0", help="default: nothing listens there (see above)")
    args = p.parse_args(argv)
    roots = args.root or [str(ROOT)]
    print(f"{'root':40} {'messages':>9} {'CPU s/1,000 msgs':>17} {'wall s':>7}  load")
    for _ in range(args.repeat):
        for root in roots:  # interleaved, so a busy moment on the host hits both
            done, cpu, wall = run(root, args.port, args.conns, args.messages, args.window, args.redis_url)
            print(f"{root:40} {done:>9} {cpu:>17.4f} {wall:>7.2f}  {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
