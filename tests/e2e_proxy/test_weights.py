"""Weights 50/30/20 are honoured over 1,000 calls with algorithms 4 (weighted round-robin) and 9 (weight).

Counted where the calls land: the INVITEs each SIPp UAS received. "Within ±5%" is read as each
server's share within 5 percentage points of its weight (Kamailio's alg 9 splits 3,000 calls
exactly 1,500/900/600; ours should be as close).
"""

import pytest

from tests.e2e_proxy.conftest import WEIGHTS

pytestmark = pytest.mark.sipp

CALLS = 1000


@pytest.mark.parametrize("algorithm", [4, 9])
def test_it_honours_weights(cluster_factory, algorithm):
    cluster = cluster_factory(algorithm=algorithm)
    uac = cluster.run_uac(calls=CALLS, rate=500, hold_ms=50)
    assert uac.proc.returncode == 0, cluster.report(uac)
    counts = cluster.stop_all_uas()
    received = {n: c.get("INVITE_Recv", 0) for n, c in counts.items()}
    assert sum(received.values()) == CALLS, received
    shares = {n: 100.0 * received[n] / CALLS for n in received}
    for n, weight in WEIGHTS.items():
        assert abs(shares[n] - weight) <= 5.0, f"alg {algorithm}: ast{n} got {shares[n]:.1f}% for weight {weight}: {received}"
