"""A figure no live proxy vouches for is unknown: never 0, never "drained — safe to restart".

Two ways to lose the count: a proxy restarted with calls up (its heartbeat lists them as
unknown until their BYEs pass), or a proxy stopped reporting while its lb:nodecalls record
still shows calls. Every reader (the row, the drain confirmation, the API, /metrics, JSON-RPC)
goes through lbcore.rules.unvouched_calls via dispatcher.live.
"""

import time

import pytest

from dispatcher.tests.api_support import client_for
from dispatcher.tests.panel_support import write_node
from lbcore import contract


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def _row(html, dest):
    start = html.index(f'id="dest-{dest.id}"')
    return html[start : html.index("</tr>", start)]


def _restarted_node(redis, name, dest, inherited):
    redis.set(
        contract.node_key(name),
        contract.encode_node(
            name,
            table_version=1,
            started=time.time() - 5,
            pid=2,
            listen=[],
            totals={},
            destinations={dest.id: {"active": 0}},
            unknown={dest.id: inherited},
            restarted_at=time.time() - 5,
        ),
        ex=60,
    )


def _dead_node_record(redis, name, dest, active):
    redis.set(
        contract.node_calls_key(name), contract.encode_node_calls(name, pid=1, active={dest.id: active}, unknown={}), ex=600
    )


def test_a_restarted_proxy_makes_the_row_unknown_not_drained(as_operator, cluster, redis):
    ast2 = cluster["ast2"]  # in maintenance
    _restarted_node(redis, "lb1", ast2, 40)
    row = _row(as_operator.get("/sets/").content.decode(), ast2)
    assert "drained" not in row and 'data-testid="drain-unknown"' in row
    assert "proxy lb1 restarted at" in row and "with 40 calls up; counts unknown" in row
    confirm = as_operator.get(f"/destinations/{ast2.id}/confirm/inactive/").content.decode()
    assert "Active calls unknown: proxy lb1 restarted at" in confirm and 'data-testid="confirm-active"' not in confirm


def test_a_proxy_that_stopped_reporting_with_calls_up_makes_them_unknown(as_operator, cluster, redis):
    ast2 = cluster["ast2"]
    write_node(redis, "lb2", destinations={ast2.id: {"active": 0}})  # a live proxy that carries none of them
    _dead_node_record(redis, "lb1", ast2, 7)
    row = _row(as_operator.get("/sets/").content.decode(), ast2)
    assert "drained" not in row and "proxy lb1 stopped reporting at" in row and "with 7 calls up" in row


def test_a_live_proxy_vouches_for_its_own_record(as_operator, cluster, redis):
    ast2 = cluster["ast2"]
    write_node(redis, "lb1", destinations={ast2.id: {"active": 0}})
    _dead_node_record(redis, "lb1", ast2, 3)  # its own, a second old: the heartbeat is what counts
    assert "drained — safe to restart" in _row(as_operator.get("/sets/").content.decode(), ast2)


def test_the_api_says_null_and_why(operator, cluster, redis):
    ast2 = cluster["ast2"]
    _restarted_node(redis, "lb1", ast2, 40)
    body = client_for(operator).get("/api/v1/stats/").json()
    row = next(d for d in body["destinations"] if d["id"] == ast2.id)
    assert row["active"] is None and "proxy lb1 restarted at" in row["active_unknown"]
    assert body["sets"][0]["active"] is None
    other = next(d for d in body["destinations"] if d["id"] == cluster["ast1"].id)
    assert (other["active"], other["active_unknown"]) == (0, None)


def test_metrics_leave_the_unknown_count_out_and_flag_it(client, cluster, redis):
    ast2 = cluster["ast2"]
    _restarted_node(redis, "lb1", ast2, 40)
    lines = [
        line
        for line in client.get("/metrics").content.decode().splitlines()
        if line.startswith("lbpanel_destination_active_calls")
    ]
    mine = [line for line in lines if f'id="{ast2.id}"' in line]
    assert len(mine) == 1 and mine[0].startswith("lbpanel_destination_active_calls_unknown{") and mine[0].endswith(" 1.0"), lines
