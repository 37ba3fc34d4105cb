"""The real proxy process behind a resolver that never answers: a request naming an unknown
host must not stop it answering OPTIONS or carrying calls. Before the fix one such packet
froze `runproxy` for the resolver's whole timeout (getaddrinfo on the event loop).

The proxy runs in a mount namespace of its own whose /etc/resolv.conf names a silent
nameserver on a loopback address: the C library and c-ares both read that file, so the test
exercises whatever resolver the proxy uses, and no query leaves the machine.
"""

import random
import socket
import subprocess
import time

import pytest

from tests.e2e_proxy.rawsip import UdpPeer, request

pytestmark = pytest.mark.sipp


def _can_unshare():
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def silent_nameserver():
    for _ in range(20):
        ip = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((ip, 53))
        except OSError:
            sock.close()
            continue
        yield ip
        sock.close()
        return
    pytest.fail("no free loopback address for a silent nameserver on port 53")


def test_a_name_behind_a_silent_resolver_does_not_freeze_the_proxy(cluster_factory, silent_nameserver, tmp_path):
    if not _can_unshare():
        pytest.skip("unshare -m is not permitted here (needs CAP_SYS_ADMIN)")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {silent_nameserver}\noptions timeout:5 attempts:2\n")
    cluster = cluster_factory(start_proxy=False)
    cluster.proxy_wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv)]
    cluster.start_proxy()
    port = cluster.ports.proxy
    uac = cluster.uac(calls=100, rate=20, hold_ms=100)
    with UdpPeer() as peer:
        late = []
        for n in range(10):
            name = f"stall{n}.lbtest.invalid"
            # in-dialog (To tag) from a trusted address: the Route names us, then the unknown host
            msg = request(
                "MESSAGE",
                f"sip:x@{name}:5099",
                peer.port,
                port,
                extra=f"Route: <sip:127.0.0.1:{port};lr>, <sip:{name}:5099;lr>\r\n",
            )
            peer.send(msg.replace("\r\nCall-ID", ";tag=dlg\r\nCall-ID", 1).encode(), port)
            sent = time.monotonic()
            answer = peer.options(port, timeout=3.0)
            while answer is not None and answer.header("cseq").endswith("MESSAGE"):
                answer = peer.wait_response(lambda r: True, 3.0)
            assert answer is not None, f"no answer to OPTIONS while {name} was being resolved:\n{cluster.proxy.tail()}"
            late.append(time.monotonic() - sent)
        # the resolver's own timeout is 10 s (5 s x 2): a stalled loop shows as seconds
        assert max(late) < 2.0, f"OPTIONS waited {max(late):.1f} s behind a DNS lookup"
    uac.wait(60)
    assert uac.proc.returncode == 0, cluster.report(uac)
    assert int(uac.stats()["SuccessfulCall(C)"]) == 100, cluster.report(uac)
