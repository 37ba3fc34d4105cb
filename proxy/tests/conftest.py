import pytest

from proxy.tests.tls_support import Pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA, the proxy's and servers' certificates, made once per test session (openssl CLI)."""
    return Pki(tmp_path_factory.mktemp("pki"))
