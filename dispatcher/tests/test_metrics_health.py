import time

from prometheus_client.parser import text_string_to_metric_families

from dispatcher.models import ProbeSettings
from dispatcher.tests.api_support import FOREIGN_ADDRESS, client_for
from lbcore import contract


def samples(response):
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def write_node(redis, name, version, destinations=None, **more):
    raw = contract.encode_node(
        name,
        table_version=version,
        started=time.time(),
        pid=1,
        listen=["udp:127.0.0.1:5060"],
        totals={"invites": 0},
        destinations=destinations or {},
        **more,
    )
    redis.set(contract.node_key(name), raw, ex=contract.NODE_TTL_SECONDS)


# --- /metrics ---


def test_metrics_per_destination_and_node(anonymous, table, redis):
    d1, d2 = table["dests"][:2]
    redis.set(contract.TABLE_VERSION_KEY, 4)
    write_node(redis, "lb-a", 4, {d1.pk: {"active": 6, "invites": 9, "answered": 8, "failovers": 2, "cps": 1.5}})
    redis.hset(contract.HEALTH_KEY, str(d1.pk), contract.encode_health(contract.Health(state="up", rtt_ms=20.0)))
    redis.hset(contract.HEALTH_KEY, str(d2.pk), contract.encode_health(contract.Health(state="down")))
    response = anonymous.get("/metrics")  # from 127.0.0.1, in LBPANEL_METRICS_ALLOWED by default
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    found = samples(response)
    labels = (("duid", "ast1"), ("id", str(d1.pk)), ("set", "1"), ("uri", "sip:127.0.0.1:5081"))
    assert found[("lbpanel_destination_active_calls", labels)] == 6
    assert found[("lbpanel_destination_answered_total", labels)] == 8
    assert found[("lbpanel_destination_failovers_total", labels)] == 2
    assert found[("lbpanel_destination_probe_rtt_seconds", labels)] == 0.02
    assert found[("lbpanel_destination_usable", labels)] == 1
    assert found[("lbpanel_destination_admin_state", tuple(sorted(labels + (("state", "active"),))))] == 1
    d2_labels = (("duid", "ast2"), ("id", str(d2.pk)), ("set", "1"), ("uri", "sip:127.0.0.1:5082"))
    assert found[("lbpanel_destination_health", tuple(sorted(d2_labels + (("health", "down"),))))] == 1
    assert found[("lbpanel_destination_usable", d2_labels)] == 0
    assert found[("lbpanel_node_table_version", (("node", "lb-a"),))] == 4
    assert 0 <= found[("lbpanel_node_heartbeat_age_seconds", (("node", "lb-a"),))] < contract.NODE_TTL_SECONDS
    assert found[("lbpanel_table_version", ())] == 4 and found[("lbpanel_redis_up", ())] == 1


def test_metrics_give_each_live_proxys_cpu_share_and_delay_and_nothing_for_a_stale_one(anonymous, table, redis):
    write_node(redis, "lb-a", 1, {}, load={"cpu": 0.42, "delay_ms": 12.0, "window_s": 10.0})
    write_node(redis, "lb-b", 1, {}, heartbeat=time.time() - 4, load={"cpu": 0.9, "delay_ms": 1.0, "window_s": 10.0})
    found = samples(anonymous.get("/metrics"))
    assert found[("lbpanel_node_cpu_ratio", (("node", "lb-a"),))] == 0.42
    assert found[("lbpanel_node_delay_seconds", (("node", "lb-a"),))] == 0.012
    assert ("lbpanel_node_cpu_ratio", (("node", "lb-b"),)) not in found  # its figure is from before it stopped
    assert not [k for k in found if k[0] == "lbpanel_node_reader_cpu_ratio"]  # no reader, no figure


def test_metrics_give_a_workers_reader_where_it_is_known(anonymous, redis):
    write_node(redis, "lb-r0", 1, {}, load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0, "reader_cpu": 0.77})
    write_node(redis, "lb-r1", 1, {}, load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0, "reader_cpu": None})
    found = samples(anonymous.get("/metrics"))
    assert found[("lbpanel_node_reader_cpu_ratio", (("node", "lb-r0"),))] == 0.77
    assert ("lbpanel_node_reader_cpu_ratio", (("node", "lb-r1"),)) not in found
    assert found[("lbpanel_node_cpu_ratio", (("node", "lb-r1"),))] == 0.3


def test_metrics_leave_out_what_nobody_reports_now(anonymous, table, redis):
    # the proxy stopped (SIGSTOP, a hung host): its last heartbeat is still in Redis for a while
    d1 = table["dests"][0]
    write_node(redis, "lb-a", 4, {d1.pk: {"active": 6, "cps": 1.5}}, heartbeat=time.time() - 10)
    found = samples(anonymous.get("/metrics"))
    labels = (("duid", "ast1"), ("id", str(d1.pk)), ("set", "1"), ("uri", "sip:127.0.0.1:5081"))
    assert ("lbpanel_destination_active_calls", labels) not in found
    assert found[("lbpanel_destination_active_calls_unknown", labels)] == 1
    assert ("lbpanel_destination_cps", labels) not in found
    assert not [k for k in found if k[0] in ("lbpanel_server_cps", "lbpanel_server_active_calls")]


def test_metrics_from_elsewhere_need_a_token(anonymous, viewer, table, redis):
    assert anonymous.get("/metrics", REMOTE_ADDR=FOREIGN_ADDRESS).status_code == 401
    assert client_for(viewer, write=False).get("/metrics", REMOTE_ADDR=FOREIGN_ADDRESS).status_code == 200


def test_metrics_refuse_a_user_without_role(as_nobody, redis):
    assert as_nobody.get("/metrics", REMOTE_ADDR=FOREIGN_ADDRESS).status_code == 403


def test_the_allowed_addresses_come_from_settings(anonymous, settings, redis):
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    assert anonymous.get("/metrics", REMOTE_ADDR=FOREIGN_ADDRESS).status_code == 200
    assert anonymous.get("/metrics").status_code == 401


def test_metrics_say_when_redis_is_away(anonymous, table, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    found = samples(anonymous.get("/metrics"))
    assert found[("lbpanel_redis_up", ())] == 0


def test_metrics_are_get_only(as_admin):
    assert as_admin.post("/metrics").status_code == 405


# --- /healthz ---


def test_healthy_when_every_part_is_alive(client, db, redis):
    redis.set(contract.LAST_ROUND_KEY, time.time() - 5)
    redis.set(contract.TABLE_VERSION_KEY, 3)
    write_node(redis, "lb-a", 3)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert 4 < body["checks"]["worker"]["last_round_age"] < 60
    [node] = body["checks"]["proxies"]["nodes"]
    assert node["name"] == "lb-a" and node["table_version"] == 3 and node["behind"] is False


def test_a_stale_worker_is_503(client, db, redis):
    ProbeSettings.objects.update_or_create(pk=1, defaults={"ping_interval": 10})
    write_node(redis, "lb-a", 1)
    redis.set(contract.LAST_ROUND_KEY, time.time() - 31)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["down"] == ["worker"]
    assert "31s ago" in response.json()["checks"]["worker"]["error"]
    redis.delete(contract.LAST_ROUND_KEY)
    assert "no probe round" in client.get("/healthz").json()["checks"]["worker"]["error"]


def test_paused_probing_is_not_a_dead_worker(client, db, redis):
    write_node(redis, "lb-a", 1)
    redis.set(contract.PING_ACTIVE_KEY, "0")
    assert client.get("/healthz").status_code == 200


def test_no_live_proxy_is_503(client, db, redis):
    redis.set(contract.LAST_ROUND_KEY, time.time())
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["down"] == ["proxies"]


def test_redis_down_is_503_naming_it(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503 and body["down"] == ["redis", "worker", "proxies", "publication"]
    assert body["checks"]["database"]["ok"] and "Redis" in body["checks"]["redis"]["error"]


def test_healthz_is_get_only(client, db):
    assert client.post("/healthz").status_code == 405
