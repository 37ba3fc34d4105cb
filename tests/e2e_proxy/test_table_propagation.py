"""How long a change made in the panel takes to reach each proxy: two `manage.py runproxy` on one
Redis, a destination's state flipped through dispatcher.services (committed, published after
commit), and each node's heartbeat read for when it applied that version. The figure is the
node's table_applied_at minus the table's published_at (one clock: both run on this host), so
the heartbeat's one-second period does not enter it. Printed per node; the figures are also
the issue's "a change reaches every live node within 100 ms"."""

import json
import statistics

import pytest

from tests.e2e_proxy.conftest import Ports
from tests.e2e_proxy.proxyctl import ProxyProcess

pytestmark = pytest.mark.slow

CHANGES = 10


def _published_at(redis, version):
    doc = json.loads(redis.get("lb:table"))
    assert doc["version"] == version, "another publish came in between"
    return doc["published_at"]


def test_a_panel_change_reaches_every_node_and_each_says_when(transactional_db, redis, redis_url, tmp_path, capsys):
    from dispatcher.models import Destination
    from dispatcher.services import import_dispatcher_list, set_state

    import_dispatcher_list("1 sip:127.0.0.1:5999 0 0 duid=ast1\n")
    dest = Destination.objects.get()
    nodes = []
    try:
        for name in ("prop-a", "prop-b"):
            proxy = ProxyProcess(port=Ports().proxy, redis_url=redis_url, node_name=name, logdir=tmp_path)
            nodes.append(proxy)
            proxy.start()
        figures = {p.node_name: [] for p in nodes}
        for n in range(CHANGES):
            set_state(dest, "inactive" if n % 2 == 0 else "active", reason="propagation")
            version = int(redis.get("lb:table:version"))
            published = _published_at(redis, version)
            for proxy in nodes:
                beat = proxy.wait_node(redis, lambda b, v=version: b.get("table_version") == v, f"table v{version}", 5.0)
                assert beat["table_published_at"] == published
                applied = beat["table_applied_at"]
                assert applied is not None and applied >= published - 0.001, (applied, published)
                figures[proxy.node_name].append((applied - published) * 1000)
        with capsys.disabled():
            for name, ms in figures.items():
                print(
                    f"\ntable propagation to {name} over {len(ms)} panel changes: median {statistics.median(ms):.1f} ms, "
                    f"max {max(ms):.1f} ms ({', '.join(f'{m:.1f}' for m in ms)})"
                )
    finally:
        for proxy in nodes:
            proxy.stop()
