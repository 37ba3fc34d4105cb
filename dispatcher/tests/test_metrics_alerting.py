"""/metrics carries what the Prometheus alert rules and the Grafana dashboard need: a server's health,
each proxy's shed/503/failover counters and versions behind, and the last probe round."""

import time

from dispatcher.tests.panel_support import write_health, write_node
from dispatcher.tests.test_metrics_health import samples
from lbcore import contract


def test_it_exports_server_health_node_counters_and_probe_rounds(anonymous, cluster, redis):
    ast1 = cluster["ast1"]
    write_health(redis, ast1.id, contract.DOWN)
    redis.set(contract.TABLE_VERSION_KEY, 7)
    totals = {"active": 0, "invites": 90, "answered": 60, "failovers": 4, "sent_503": 12, "shed": 9, "inbox_dropped": 5}
    write_node(redis, "lb-a", table_version=5, totals=totals)
    round_at = time.time() - 3
    redis.set(contract.LAST_ROUND_KEY, round_at)
    found = samples(anonymous.get("/metrics"))

    server = (("health", "down"), ("id", str(ast1.server_id)), ("server", "ast1"))
    assert found[("lbpanel_server_health", server)] == 1
    assert found[("lbpanel_server_health", (("health", "up"), *server[1:]))] == 0
    node = (("node", "lb-a"),)
    assert found[("lbpanel_node_shed_total", node)] == 9
    assert found[("lbpanel_node_inbox_dropped_total", node)] == 5
    assert found[("lbpanel_node_sent_503_total", node)] == 12
    assert found[("lbpanel_node_failovers_total", node)] == 4
    assert found[("lbpanel_node_invites_total", node)] == 90
    assert found[("lbpanel_node_table_versions_behind", node)] == 2
    assert abs(found[("lbpanel_probe_last_round_timestamp_seconds", ())] - round_at) < 0.01
    assert found[("lbpanel_probe_interval_seconds", ())] == 15
    assert found[("lbpanel_probing_paused", ())] == 0


def test_without_redis_health_and_pause_are_absent_not_zero(anonymous, cluster, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    found = samples(anonymous.get("/metrics"))
    assert found[("lbpanel_redis_up", ())] == 0
    assert not [k for k in found if k[0] in ("lbpanel_server_health", "lbpanel_probing_paused")]
