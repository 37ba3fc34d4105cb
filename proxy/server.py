"""Wiring: bind the listeners, follow Redis, heartbeat, stop cleanly on SIGTERM/SIGINT."""

import asyncio
import functools
import logging
import os
import signal
import socket

from proxy import gcpolicy, sharding, stagetiming
from proxy.core import FIRST_WORKER_MARK, Proxy
from proxy.dialogs import DialogStore
from proxy.follower import Follower
from proxy.load import LoadMeter, process_cpu_seconds
from proxy.tls_listener import TlsAcceptor, listening_socket
from proxy.transport import TcpConnection, TcpListener, UdpListener, raise_file_limit

log = logging.getLogger("proxy")

READY_WAIT = 3.0  # how long start-up waits for Redis before serving with an empty table


async def _bind(core, loop, proto, host, port, advertise=None):
    if proto == "udp":
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # The listener shares its port with the per-destination sockets (SO_REUSEPORT),
        # which would also let a second proxy bind it silently: check it is free first.
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.bind((host, port))
        finally:
            probe.close()
        _, lis = await loop.create_datagram_endpoint(
            lambda: UdpListener(core, host, port, advertise=advertise), local_addr=(host, port), family=family, reuse_port=True
        )
        try:
            lis.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            lis.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        except OSError:
            pass
        return lis, None
    if proto == "tls":
        if core.pool.tls is None or core.pool.tls.server is None:
            raise OSError(0, "a tls listener needs a certificate and key (--tls-cert, --tls-key)")
        lis = TcpListener(host, port, advertise, "tls")
        return lis, TlsAcceptor(core, loop, lis, listening_socket(host, port))
    lis = TcpListener(host, port, advertise)
    server = await loop.create_server(lambda: TcpConnection(core, lis), host, port, reuse_address=True, backlog=1024)
    return lis, server


async def serve(listen, redis_url, node_name, suspect_hooks=(), stop_event=None, advertise=None, worker=None, tls=None):
    """Run until SIGTERM/SIGINT (or `stop_event`). `listen`: [(proto, host, port)];
    `advertise`: (host, port or None) named in Via and Record-Route instead of the sockets';
    `worker`: one of several processes behind one address (proxy.sharding);
    `tls`: a proxy.tls.TlsConfig (required by a tls listener, used for TLS destinations)."""
    loop = asyncio.get_running_loop()
    raise_file_limit()  # the inbound TCP cap is a share of it
    core = Proxy(loop, node_name)
    core.pool.tls = tls
    # Calls are recorded from the first datagram: the listeners serve while start-up waits up to
    # READY_WAIT for Redis, and a BYE relayed then must still close its call's record (it queues in
    # memory until the DialogStore below flushes it). Before, such a record outlived its call.
    core.accounting.recording = True
    if worker is not None:
        core.silence.share(worker.count)
        core.steering = {"mode": "bpf" if worker.steered else "reader", "why": worker.steering_why}
        if worker.to_first is not None:
            core.stream_owner = sharding.HandOver(worker.to_first)
        elif worker.count > 1:
            core.rr_mark = FIRST_WORKER_MARK
    servers = []
    worker_lis = None
    for proto, host, port in listen:
        bind_port, bind_advertise = port, advertise
        if worker is not None and proto != "udp" and worker.index != 0:
            continue  # TCP and TLS are worker 0's: it holds every connection (proxy.sharding)
        if worker is not None and proto == "udp":
            bind_port, bind_advertise = sharding.own_port(host), advertise or (host, port)
        try:
            lis, server = await _bind(core, loop, proto, host, bind_port, bind_advertise)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {proto}:{host}:{port}: {exc.strerror or exc}") from None
        if worker is not None and proto == "udp":
            sharding.setup_listener(core, worker, lis)
            worker_lis = lis
        core.add_listener(lis)
        if server is not None:
            servers.append(server)
    core.start()
    core.pool.limits()  # says at start-up when the open file limit, not the setting, caps inbound TCP
    specs = [f"{p}:{h}:{port}" for p, h, port in listen]
    follower = Follower(core, redis_url, node_name, specs, advertise)
    if worker is not None and not worker.steered:  # the reader is our parent (proxy.sharding.run)
        follower.reader_load = LoadMeter(cpu_clock=functools.partial(process_cpu_seconds, os.getppid()))
    core.on_suspect.append(follower.publish_suspect)
    core.on_suspect.extend(suspect_hooks)
    tasks = [loop.create_task(follower.run(), name="follower")]
    tasks.append(loop.create_task(core.names.run(follower.stopped), name="dns"))
    try:
        await asyncio.wait_for(follower.first_attempt.wait(), READY_WAIT)
    except TimeoutError:
        pass
    tasks.append(loop.create_task(follower.heartbeat(), name="heartbeat"))
    dialogs = DialogStore(core, node_name, follower._client, sharding.sibling_names(node_name, worker))
    timing = stagetiming.install(core, dialogs, worker)  # bench only: None unless LBPANEL_STAGE_TIMING is set
    tasks.append(loop.create_task(dialogs.run(), name="dialogs"))
    tasks.append(loop.create_task(core.calllog.run(follower._client), name="calllog"))
    stop = stop_event or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    gcpolicy.install()
    if worker is not None:
        sharding.attach_inbox(core, loop, worker, worker_lis)
    log.warning(
        "%s ready node=%s table version=%s redis=%s listen=%s",
        "proxy" if worker is None else f"worker {worker.index}",
        node_name,
        core.view.version,
        "connected" if follower.connected else "absent",
        ",".join(specs),
    )
    if worker is not None:
        os.write(worker.ready_fd, b"r")
    await stop.wait()
    log.warning("proxy stopping node=%s", node_name)
    follower.stop()
    dialogs.stop()
    core.calllog.stop()
    for t in tasks:
        t.cancel()
    # bounded: a Redis client stuck in close must not keep the process from exiting
    _, pending = await asyncio.wait(tasks, timeout=3.0)
    for t in pending:
        log.warning("task %s did not stop in time: %s", t.get_name(), t.get_stack(limit=5))
    for server in servers:
        server.close()
    for lis in core.listeners:
        if lis.proto == "udp" and lis.transport is not None:
            lis.transport.close()
    core.stop()
    if timing is not None:
        timing.dump()
    try:
        await asyncio.wait_for(dialogs.close(), 1.0)
    except (TimeoutError, OSError):
        pass
    try:
        await asyncio.wait_for(core.calllog.close(follower._client), 1.0)
    except (TimeoutError, OSError):
        pass
    try:
        await asyncio.wait_for(follower.remove_node(), 1.0)
    except (TimeoutError, OSError):
        pass
    return core
