"""/api/v1/nodes/ and /api/v1/stats/ read what proxies wrote to a real Redis."""

import time

from lbcore import contract


def write_node(redis, name, version, destinations, **more):
    totals = {
        "active": sum(d.get("active", 0) for d in destinations.values()),
        "invites": 10,
        "answered": 8,
        "failovers": 1,
        "sent_503": 0,
        "shed": 0,
    }
    raw = contract.encode_node(
        name,
        table_version=version,
        started=time.time() - 60,
        pid=4242,
        listen=["udp:127.0.0.1:5060"],
        totals=totals,
        destinations=destinations,
        **more,
    )
    redis.set(contract.node_key(name), raw, ex=contract.NODE_TTL_SECONDS)


def test_nodes_show_heartbeat_and_applied_version(as_viewer, table, redis):
    redis.set(contract.TABLE_VERSION_KEY, 7)
    write_node(redis, "lb-a", 7, {})
    write_node(redis, "lb-b", 6, {})
    body = as_viewer.get("/api/v1/nodes/").json()
    assert body["count"] == 2
    a, b = body["results"]
    assert (a["name"], a["table_version"], a["behind"]) == ("lb-a", 7, False)
    assert (b["name"], b["behind"]) == ("lb-b", True)
    assert 0 <= a["age"] < contract.NODE_TTL_SECONDS and a["listen"] == ["udp:127.0.0.1:5060"] and a["totals"]["invites"] == 10


def test_nodes_say_how_near_each_is_to_its_cpu_limit_or_why_it_is_unknown(as_viewer, table, redis):
    write_node(redis, "lb-a", 1, {}, load={"cpu": 0.9, "delay_ms": 12.5, "window_s": 10.0})
    write_node(redis, "lb-b", 1, {}, load={"cpu": 0.3, "delay_ms": 0.4, "window_s": 10.0})
    write_node(redis, "lb-c", 1, {})  # a proxy from before the figure
    write_node(redis, "lb-d", 1, {}, heartbeat=time.time() - 4, load={"cpu": 0.2, "delay_ms": 1.0, "window_s": 10.0})
    rows = {n["name"]: n for n in as_viewer.get("/api/v1/nodes/").json()["results"]}
    assert rows["lb-a"]["load"] == {"cpu": 0.9, "delay_ms": 12.5, "window_s": 10.0} and rows["lb-a"]["load_level"] == "limit"
    assert rows["lb-b"]["load_level"] == "ok" and rows["lb-b"]["load_unknown_why"] is None
    assert (
        rows["lb-c"]["load"] is None and rows["lb-c"]["load_level"] is None and "not reported" in rows["lb-c"]["load_unknown_why"]
    )
    assert rows["lb-d"]["load"] is None and rows["lb-d"]["load_unknown_why"] == "no heartbeat for 4 s"


def test_a_worker_behind_a_reader_gives_the_readers_share_too(as_viewer, table, redis):
    write_node(redis, "lb-a", 1, {}, load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0, "reader_cpu": 0.9})
    write_node(redis, "lb-b", 1, {}, load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0, "reader_cpu": None})
    rows = {n["name"]: n for n in as_viewer.get("/api/v1/nodes/").json()["results"]}
    assert rows["lb-a"]["load"]["reader_cpu"] == 0.9 and rows["lb-a"]["load_level"] == "limit"
    assert rows["lb-b"]["load"]["reader_cpu"] is None and rows["lb-b"]["load_level"] == "ok"


def test_stats_sum_live_nodes_per_destination_and_set(as_viewer, table, redis):
    d1, d2, _d3, d4 = table["dests"]
    write_node(redis, "lb-a", 1, {d1.pk: {"active": 3, "invites": 10, "answered": 9, "failovers": 1, "cps": 0.5}})
    write_node(
        redis,
        "lb-b",
        1,
        {
            d1.pk: {"active": 2, "invites": 5, "answered": 4, "failovers": 0, "cps": 0.25},
            d4.pk: {"active": 7, "invites": 7, "answered": 7, "failovers": 0, "cps": 1.0},
        },
    )
    redis.hset(contract.HEALTH_KEY, str(d2.pk), contract.encode_health(contract.Health(state="down", rtt_ms=None, fails=3)))
    redis.hset(contract.HEALTH_KEY, str(d1.pk), contract.encode_health(contract.Health(state="up", rtt_ms=12.5)))
    body = as_viewer.get("/api/v1/stats/").json()
    assert body["nodes"] == 2 and body["redis_error"] == ""
    rows = {r["id"]: r for r in body["destinations"]}
    assert (rows[d1.pk]["active"], rows[d1.pk]["answered"], rows[d1.pk]["cps"], rows[d1.pk]["rtt_ms"]) == (5, 13, 0.75, 12.5)
    assert rows[d2.pk]["health"] == "down" and rows[d2.pk]["usable"] is False and rows[d2.pk]["kamailio_flags"] == "I"
    sets = {s["setid"]: s for s in body["sets"]}
    assert (sets[1]["active"], sets[1]["failovers"], sets[1]["usable"], sets[1]["destinations"]) == (5, 1, 2, 3)
    assert sets[2]["active"] == 7


def test_stats_say_unknown_not_0_while_no_proxy_reports(as_viewer, table, redis):
    # Found by hand: the proxy SIGSTOPped, the panel said "—" and "unknown"; the API said active 0,
    # active_unknown null, cps 0.0: a stopped proxy is not an idle one.
    d1 = table["dests"][0]
    write_node(redis, "lb-a", 1, {d1.pk: {"active": 3, "cps": 0.5}}, heartbeat=time.time() - 10)
    body = as_viewer.get("/api/v1/stats/").json()
    row = {r["id"]: r for r in body["destinations"]}[d1.pk]
    assert (row["active"], row["cps"], row["cps_1m"]) == (None, None, None)
    assert row["active_unknown"] == "no proxy reporting; counts unknown"
    assert all(s["active"] is None and s["cps"] is None for s in body["sets"])
    server = as_viewer.get(f"/api/v1/servers/{d1.server_id}/").json()
    assert (server["active_calls"], server["cps"], server["cps_1m"]) == (None, None, None)
    write_node(redis, "lb-a", 1, {d1.pk: {"active": 3, "cps": 0.5}})  # it reports again
    row = {r["id"]: r for r in as_viewer.get("/api/v1/stats/").json()["destinations"]}[d1.pk]
    assert (row["active"], row["cps"], row["active_unknown"]) == (3, 0.5, None)


def test_stats_say_when_redis_is_away(as_viewer, table, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = as_viewer.get("/api/v1/stats/").json()
    assert "Redis is not reachable" in body["redis_error"] and body["nodes"] == 0 and len(body["destinations"]) == 4


def test_they_require_authentication(anonymous):
    assert anonymous.get("/api/v1/nodes/").status_code == 401
    assert anonymous.get("/api/v1/stats/").status_code == 401


def test_they_are_read_only(as_admin, redis):
    assert as_admin.post("/api/v1/nodes/", {}, format="json").status_code == 405
    assert as_admin.post("/api/v1/stats/", {}, format="json").status_code == 405
    assert as_admin.get("/api/v1/nodes/lb-a/").status_code == 404
