"""The dashboard's Proxies table: each node's calls, table version and lag (versions behind, and how
long its table took to reach it), who holds the floating address, and a node that stopped reporting
with the calls it had."""

import re
import time

import pytest

from dispatcher.tests.panel_support import write_node
from lbcore import contract


@pytest.fixture
def panel(client, viewer):
    client.force_login(viewer)
    return client


def _nodes(html):
    return html.split('data-testid="nodes"')[1].split("</table>")[0]


def _row(nodes, name):
    match = re.search(rf"<tr[^>]*>\s*<td class=\"mono\">{name}</td>.*?</tr>", nodes, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def test_it_shows_each_nodes_calls_version_and_how_long_the_table_took(panel, cluster, redis):
    redis.set("lb:table:version", 7)
    ast1 = cluster["ast1"]
    write_node(
        redis,
        "lb1",
        table_version=7,
        destinations={ast1.id: {"active": 12}},
        table_published_at=1000.0,
        table_applied_at=1000.0042,
    )
    write_node(redis, "lb2", table_version=5, destinations={ast1.id: {"active": 3}})
    nodes = _nodes(panel.get("/sets/").content.decode())
    lb1, lb2 = _row(nodes, "lb1"), _row(nodes, "lb2")
    assert "v7" in lb1 and "current" in lb1 and 'data-testid="propagation"' in lb1 and "in 4.2 ms" in lb1
    assert re.search(r'<td class="num">12</td>', lb1)
    assert "v5" in lb2 and 'data-testid="behind">2 behind' in lb2 and re.search(r'<td class="num">3</td>', lb2)
    assert 'data-testid="propagation"' not in lb2  # a proxy that does not say: nothing made up


def test_it_shows_which_node_holds_the_floating_address(panel, cluster, redis):
    write_node(redis, "lb1", advertise="10.0.0.100:5060", holds_address=True)
    write_node(redis, "lb2", advertise="10.0.0.100:5060", holds_address=False)
    write_node(redis, "lb3", advertise="vip.example.com:5060", holds_address=None)
    write_node(redis, "lb4")
    write_node(redis, "lb5", holds_address=True)  # bound to the floating address itself; keepalived says master
    nodes = _nodes(panel.get("/sets/").content.decode())
    assert "10.0.0.100:5060" in _row(nodes, "lb1") and "holds it" in _row(nodes, "lb1")
    assert "standby" in _row(nodes, "lb2") and "holds it" not in _row(nodes, "lb2")
    assert ">unknown</span>" in _row(nodes, "lb3") and "holds it" not in _row(nodes, "lb3")
    assert "own sockets" in _row(nodes, "lb4")
    assert "holds it" in _row(nodes, "lb5") and "own sockets" not in _row(nodes, "lb5")


def test_it_shows_a_node_that_stopped_reporting_with_the_calls_it_had(panel, cluster, redis):
    write_node(redis, "lb2")
    since = time.time() - 30
    redis.set(
        contract.node_calls_key("lb1"),
        contract.encode_node_calls(
            "lb1", pid=1, active={cluster["ast1"].id: 4, cluster["ast2"].id: 2}, unknown={}, written=since
        ),
        ex=600,
    )
    nodes = _nodes(panel.get("/sets/").content.decode())
    departed = re.search(r'<tr class="is-stale" data-testid="departed">.*?</tr>', nodes, re.S).group(0)
    assert ">lb1<" in departed and "stopped reporting" in departed and re.search(r">6</td>", departed)
    assert 'data-testid="departed"' not in _row(nodes, "lb2")


def test_the_api_gives_the_same_per_node(as_viewer, cluster, redis):
    write_node(redis, "lb1", advertise="10.0.0.100:5060", holds_address=True, table_published_at=50.0, table_applied_at=50.25)
    (node,) = as_viewer.get("/api/v1/nodes/").json()["results"]
    assert node["holds_address"] is True and node["advertise"] == "10.0.0.100:5060"
    assert node["table_applied_at"] == 50.25 and round(node["propagation_ms"]) == 250


def test_a_dead_node_s_dialog_records_name_it_until_a_live_node_claims_them():
    from dispatcher.live import LiveSnapshot
    from dispatcher.views.rows import departed_nodes

    snap = LiveSnapshot(nodes=[{"name": "lb2", "age": 0.5}], node_calls={"lb1": {1: 4, 2: 3}, "lb2": {1: 9}, "lb3": {}})
    (lb1,) = departed_nodes(snap)
    assert (lb1.name, lb1.calls, lb1.since) == ("lb1", 7, None)


def test_it_shows_datagrams_a_workers_reader_dropped(panel, cluster, redis):
    # --processes: the reader drops a worker's datagrams when its inbox is full; callers retransmit,
    # but a worker that keeps falling behind loses calls, and only its heartbeat can say so.
    write_node(redis, "lb1-w0", totals={"active": 0, "invites": 10, "inbox_dropped": 37})
    write_node(redis, "lb1-w1", totals={"active": 0, "invites": 10, "inbox_dropped": 0})
    nodes = _nodes(panel.get("/sets/").content.decode())
    assert 'data-testid="inbox-dropped"' in nodes and "37 datagrams dropped before this worker" in nodes
    assert 'data-testid="inbox-dropped"' not in _row(nodes, "lb1-w1")


def test_it_shows_how_each_worker_gets_its_calls_and_why_the_reader(panel, cluster, redis):
    # --processes --steering auto falls back to the reader where the kernel refuses the eBPF
    # program (no CAP_BPF, an old kernel): one more hop per datagram, and ops should see why.
    write_node(redis, "lb1", steering={"mode": "bpf", "why": None})
    write_node(redis, "lb2", steering={"mode": "reader", "why": "the kernel refused the program: Operation not permitted"})
    write_node(redis, "lb3")  # one process: nothing to steer
    nodes = _nodes(panel.get("/sets/").content.decode())

    def row(name):
        return re.search(rf'<td class="mono">{name}[ <].*?</tr>', nodes, re.S).group(0)

    assert "kernel-steered" in row("lb1")
    assert "reader-steered" in row("lb2") and "Operation not permitted" in row("lb2")
    assert 'data-testid="steering"' not in row("lb3")


def test_a_worker_shows_its_readers_load_beside_its_own(panel, cluster, redis):
    # --steering reader: the reader has no heartbeat of its own; at its limit every worker's calls
    # wait, while the workers' own figures show headroom
    from dispatcher.alerts.models import AlertSettings

    AlertSettings.objects.update_or_create(pk=1, defaults={"proxy_busy_pct": 80})
    write_node(redis, "lb1", load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0, "reader_cpu": 0.92})
    write_node(redis, "lb2", load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0, "reader_cpu": None})
    write_node(redis, "lb3", load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0})  # one process, or kernel-steered
    nodes = _nodes(panel.get("/sets/").content.decode())

    def load(name):
        return re.search(r'<td data-testid="load">(.*?)</td>', _row(nodes, name), re.S).group(1)

    assert "badge green" in load("lb1") and "CPU 30 %" in load("lb1")  # the worker itself has headroom
    assert re.search(r'badge red" data-testid="reader-cpu"[^>]*>reader 92 %', load("lb1")), load("lb1")
    assert "reader unknown" in load("lb2") and "/proc" in load("lb2")
    assert "reader" not in load("lb3")


def test_each_nodes_cpu_load_shows_against_the_alert_threshold_and_unknown_says_why(panel, cluster, redis):
    from dispatcher.alerts.models import AlertSettings

    AlertSettings.objects.update_or_create(pk=1, defaults={"proxy_busy_pct": 80})
    write_node(redis, "lb1", load={"cpu": 0.42, "delay_ms": 1.25, "window_s": 10.0})
    write_node(redis, "lb2", load={"cpu": 0.65, "delay_ms": 8.0, "window_s": 10.0})
    write_node(redis, "lb3", load={"cpu": 0.81, "delay_ms": 40.0, "window_s": 10.0})
    write_node(redis, "lb4")
    write_node(redis, "lb5", heartbeat=time.time() - 20, load={"cpu": 0.1, "delay_ms": 1.0, "window_s": 10.0})
    nodes = _nodes(panel.get("/sets/").content.decode())

    def load(name):
        return re.search(r'<td data-testid="load">(.*?)</td>', _row(nodes, name), re.S).group(1)

    assert "badge green" in load("lb1") and "CPU 42 %" in load("lb1") and "1.2 ms" in load("lb1")
    assert "badge orange" in load("lb2") and "CPU 65 %" in load("lb2")  # within 20 points of 80
    assert "badge red" in load("lb3") and "CPU 81 %" in load("lb3") and "LBPANEL_PROXY_PROCESSES" in load("lb3")
    assert "unknown" in load("lb4") and "not reported" in load("lb4")
    assert "unknown" in load("lb5") and "no heartbeat for 20 s" in load("lb5") and "CPU" not in load("lb5")
