"""TLS destinations (sip:...;transport=tls and sips:) are accepted where they are stored, put on
a TLS server, and published with transport "tls" for the proxy."""

import pytest

from dispatcher.models import Destination
from dispatcher.publisher import build_table_parts

URL = "/api/v1/destinations/"


@pytest.mark.parametrize(
    "uri, port", [("sip:127.0.0.1:5071;transport=tls", 5071), ("sips:127.0.0.1", 5061), ("sips:ast9.example.com:5062", 5062)]
)
def test_it_accepts_a_tls_destination_and_puts_it_on_a_tls_server(as_admin, table, uri, port):
    response = as_admin.post(URL, {"set": 1, "uri": uri, "duid": "tls9"}, format="json")
    assert response.status_code == 201, response.json()
    dest = Destination.objects.get(uri=uri)
    assert (dest.server.transport, dest.server.port) == ("tls", port)
    sets = build_table_parts()[0]
    published = [d for s in sets for d in s["destinations"] if d["uri"] == uri]
    assert len(published) == 1 and published[0]["transport"] == "tls"
