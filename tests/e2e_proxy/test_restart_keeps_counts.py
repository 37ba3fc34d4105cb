"""A proxy restarted with calls up keeps counting them: they are records in Redis (lb:dialogs:<node>).

SIPp UAC -> runproxy -> SIPp UAS, calls held long; ast1 goes into maintenance with calls up,
then the proxy restarts. The new process reads what its previous process left in Redis, so the
dashboard row, the API and /metrics give the same count as before the restart (never 0, never
"unknown"); as the held calls hang up through the new process, the count goes down, and the row
says drained only once the last one ended.
"""

import time

import pytest

from dispatcher.tests.api_support import client_for

pytestmark = pytest.mark.sipp

CALLS = 30


def _row(html, dest_id):
    start = html.index(f'id="dest-{dest_id}"')
    return html[start : html.index("</tr>", start)]


def _wait(predicate, what, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    value = None
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never saw {what}; last: {value!r}")


def test_after_a_restart_with_calls_up_the_counts_are_still_right(cluster, client, viewer):
    from dispatcher.services import set_state

    client.force_login(viewer)
    api = client_for(viewer)
    uac = cluster.uac(calls=CALLS, rate=60, hold_ms=9000)
    up = cluster.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == CALLS, f"{CALLS} calls up")
    ast1 = cluster.dests[1]
    on_ast1 = up[1]["INVITE_Recv"]
    assert on_ast1 > 0, up
    set_state(ast1, "inactive", reason="e2e: restart the box once drained")
    cluster.wait_table(int(cluster.redis.get("lb:table:version")))
    _wait(
        lambda: 'data-testid="draining"' in _row(client.get("/sets/").content.decode(), ast1.id),
        "ast1 draining before the restart",
    )

    cluster.restart_proxy()
    # the new process counts what its previous process left in Redis: the same figures, known
    row = _row(client.get("/sets/").content.decode(), ast1.id)
    assert "drain-unknown" not in row and "drained" not in row and 'data-testid="draining"' in row, row
    stats = {d["id"]: d for d in api.get("/api/v1/stats/").json()["destinations"]}
    assert (stats[ast1.id]["active"], stats[ast1.id]["active_unknown"]) == (on_ast1, None), stats[ast1.id]
    metrics = client.get("/metrics").content.decode()
    lines = [line for line in metrics.splitlines() if line.startswith("lbpanel_destination_active_calls")]
    assert any(
        'duid="ast1"' in line and line.startswith("lbpanel_destination_active_calls{") and line.endswith(f" {on_ast1}.0")
        for line in lines
    ), lines
    assert not any('duid="ast1"' in line and "_unknown{" in line and not line.endswith(" 0.0") for line in lines), lines
    node = cluster.proxy.wait_node(cluster.redis, lambda n: n["totals"]["active"] == CALLS, f"{CALLS} calls counted")
    assert node["totals"]["adopted"] == 0  # its own calls, not another node's

    # the held calls hang up through the new process: each BYE counts one down
    uac.wait(30)
    assert uac.proc.returncode == 0, cluster.report(uac)
    row = _wait(
        lambda: (r := _row(client.get("/sets/").content.decode(), ast1.id)) and 'data-testid="drained"' in r and r,
        "ast1 drained once its calls ended",
        deadline_s=6.0,
    )
    assert "drained — safe to restart" in row
    stats = {d["id"]: d for d in api.get("/api/v1/stats/").json()["destinations"]}
    assert (stats[ast1.id]["active"], stats[ast1.id]["active_unknown"]) == (0, None)
    counts = cluster.stop_all_uas()
    assert counts[1]["BYE_Recv"] == on_ast1, counts
