"""A TLS destination is probed over TLS, verified as the proxy verifies it (LBPANEL_TLS_CA):
a server the proxy would refuse is not reported up, and the outcome says why."""

import pytest

from probes import prober
from probes.prober import ProbeConfig, Target, probe_all
from probes.tests.conftest import free_port
from proxy.tests.harness import run
from proxy.tests.tls_support import Pki, TlsUas


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def ca(pki, monkeypatch):
    monkeypatch.setenv("LBPANEL_TLS_CA", str(pki.ca))
    monkeypatch.setattr(prober, "_tls_context", None)
    return pki


def _probe(pki, pair):
    async def main():
        port = free_port()
        uas = await TlsUas(port, pki.server_context(pair), None).start()
        try:
            target = Target(1, f"sip:127.0.0.1:{port};transport=tls", "127.0.0.1", port, "tls")
            outcome = (await probe_all([target], ProbeConfig(timeout=5.0)))[0]
            requests = []
            while not uas.requests.empty():
                requests.append(uas.requests.get_nowait())
            return outcome, requests
        finally:
            uas.close()

    return run(main())


def test_a_tls_destination_is_probed_over_tls(ca):
    outcome, requests = _probe(ca, ca.server)
    assert (outcome.code, outcome.status) == (200, "200 OK") and outcome.rtt_ms is not None
    assert requests[0].method == b"OPTIONS" and requests[0].get_all(b"via")[0].startswith(b"SIP/2.0/TLS ")


def test_a_server_the_proxy_would_not_trust_is_not_up_and_the_reason_says_why(ca):
    outcome, requests = _probe(ca, ca.rogue)
    assert outcome.code is None and not requests
    assert outcome.status.startswith("certificate verify failed: unable to get local issuer certificate")
