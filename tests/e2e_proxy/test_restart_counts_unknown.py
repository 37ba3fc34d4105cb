"""A proxy restarted with calls up must not let the panel say "drained — safe to restart".

SIPp UAC -> runproxy -> SIPp UAS, calls held long; ast1 goes into maintenance with calls up,
then the proxy restarts. The new process starts with no calls in memory, but it reads what its
previous process left in lb:nodecalls:<name>, so the dashboard row, the drain confirmation and
the API say "unknown" (never 0 / safe). As the held calls hang up, their BYEs pass the new
process and count the inherited calls down; then, and only then, the row says drained.
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


def test_after_a_restart_with_calls_up_the_panel_says_unknown_not_safe(cluster, client, viewer, operator):
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
    # the new process has 0 calls in memory; its heartbeat must say the old ones are unknown
    row = _wait(
        lambda: (r := _row(client.get("/sets/").content.decode(), ast1.id)) and "drain-unknown" in r and r,
        "ast1 unknown after the restart",
    )
    assert "drained" not in row and "safe to restart" not in row, row
    assert "proxy e2e restarted at" in row and f"with {on_ast1} call" in row, row

    stats = {d["id"]: d for d in api.get("/api/v1/stats/").json()["destinations"]}
    assert stats[ast1.id]["active"] is None, stats[ast1.id]
    assert f"with {on_ast1} call" in stats[ast1.id]["active_unknown"]
    client.force_login(operator)  # the drain confirmation is an operator's page
    confirm = client.get(f"/destinations/{ast1.id}/confirm/inactive/").content.decode()
    assert 'data-testid="confirm-unknown"' in confirm and "restarted at" in confirm, confirm
    metrics = client.get("/metrics").content.decode()
    unknown = [line for line in metrics.splitlines() if line.startswith("lbpanel_destination_active_calls")]
    assert any(
        'duid="ast1"' in line and line.startswith("lbpanel_destination_active_calls_unknown{") and line.endswith(" 1.0")
        for line in unknown
    ), unknown
    assert not any('duid="ast1"' in line and line.startswith("lbpanel_destination_active_calls{") for line in unknown), unknown

    # the held calls hang up through the new process: each BYE counts an inherited call down
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
