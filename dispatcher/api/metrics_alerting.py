"""The /metrics families deploy/prometheus/alerts.yml and deploy/grafana/lbpanel.json need beyond the
per-destination ones: a server's health, each proxy's counters (shedding, 503s, failovers) and how far
behind the published table it is, when the last probe round finished, and whether the panel's own
alerts reach their channels."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from dispatcher.alerts.status import channel_states
from dispatcher.choices import HealthState
from dispatcher.live import node_load
from dispatcher.models import ProbeSettings
from dispatcher.servers import server_figures
from lbcore import rules

# heartbeat counter -> (metric name, help); exported with the _total suffix
NODE_COUNTERS = {
    "invites": ("lbpanel_node_invites", "New INVITEs this proxy dispatched since it started."),
    "answered": ("lbpanel_node_answered", "INVITEs answered 2xx through this proxy since it started."),
    "failovers": ("lbpanel_node_failovers", "INVITEs this proxy moved to the next server since it started."),
    "sent_503": ("lbpanel_node_sent_503", "503s this proxy sent itself (overload, no server) since it started."),
    "shed": ("lbpanel_node_shed", "New INVITEs this proxy refused with 503 because it was overloaded, since it started."),
    "inbox_dropped": (
        "lbpanel_node_inbox_dropped",
        "Datagrams for this worker (--processes) dropped because it was not reading: by the reader, its inbox full, or by the kernel, its socket full.",
    ),
}


def alerting_families(snap):
    yield from _server_health(snap)
    yield from _nodes(snap)
    yield from _probe_rounds(snap)
    yield from _alert_delivery()


def _server_health(snap):
    health = GaugeMetricFamily(
        "lbpanel_server_health",
        "A server's health, the worst of its rows' that something probes (1 for the current one); unknown when "
        "disabled in every set; absent while Redis cannot be read.",
        labels=["id", "server", "health"],
    )
    if not snap.redis_error:
        for figures in server_figures(snap):
            for value in HealthState.values:
                health.add_metric([str(figures.server.id), figures.server.name, value], 1 if figures.health == value else 0)
    yield health


def _nodes(snap):
    counters = {key: CounterMetricFamily(name, text, labels=["node"]) for key, (name, text) in NODE_COUNTERS.items()}
    behind = GaugeMetricFamily(
        "lbpanel_node_table_versions_behind",
        "Routing table versions a live proxy is behind the published one (0: up to date).",
        labels=["node"],
    )
    cpu = GaugeMetricFamily(
        "lbpanel_node_cpu_ratio",
        "Share of one CPU core a proxy process used over its last 10 s (one process uses one core; near 1 it sheds). "
        "Absent when unknown: a stale heartbeat, or a proxy that does not report it.",
        labels=["node"],
    )
    delay = GaugeMetricFamily(
        "lbpanel_node_delay_seconds", "A proxy's worst loop lag or receive-queue delay over the same window.", labels=["node"]
    )
    reader = GaugeMetricFamily(
        "lbpanel_node_reader_cpu_ratio",
        "A worker behind --steering reader: the reader process's share of one CPU core over the same window "
        "(every datagram from callers passes it first). Absent without a reader, or when unknown.",
        labels=["node"],
    )
    for node in snap.nodes:
        name = node.get("name", "")
        load = node_load(node, 100).figures  # the level is the panel's; the metric is the figure
        if load is not None:
            cpu.add_metric([name], load["cpu"])
            delay.add_metric([name], load["delay_ms"] / 1000)
            if load.get("reader_cpu") is not None:
                reader.add_metric([name], load["reader_cpu"])
        totals = node.get("totals") or {}
        for key, family in counters.items():
            family.add_metric([name], int(totals.get(key) or 0))
        versions = rules.versions_behind(snap.table_version, node.get("table_version"))
        if versions is not None:
            behind.add_metric([name], versions)
    yield from counters.values()
    yield behind
    yield cpu
    yield delay
    yield reader


def _probe_rounds(snap):
    last = GaugeMetricFamily("lbpanel_probe_last_round_timestamp_seconds", "When the last probe round finished (epoch).")
    if snap.last_round is not None:
        last.add_metric([], snap.last_round)
    interval = GaugeMetricFamily("lbpanel_probe_interval_seconds", "Seconds between probe rounds (ping_interval).")
    interval.add_metric([], ProbeSettings.load().ping_interval)
    paused = GaugeMetricFamily("lbpanel_probing_paused", "1 while probing is paused (dispatcher.ping_active 0).")
    if not snap.redis_error:
        paused.add_metric([], 1 if snap.probing_paused else 0)
    yield from (last, interval, paused)


def _alert_delivery():
    """Per configured alert channel (webhook, email): an unconfigured one has no series, so a channel
    removed stops LbpanelAlertDeliveryFailing."""
    failures = CounterMetricFamily(
        "lbpanel_alert_delivery_failures",
        "Failed attempts to deliver the panel's alerts on this channel (retried every evaluation while failing).",
        labels=["channel"],
    )
    consecutive = GaugeMetricFamily(
        "lbpanel_alert_delivery_consecutive_failures",
        "Failed attempts on this channel since its last success: above 0, its latest attempt failed and its alerts wait.",
        labels=["channel"],
    )
    success = GaugeMetricFamily(
        "lbpanel_alert_last_delivery_success_timestamp_seconds",
        "When an alert (or test alert) last reached this channel (epoch); absent if none ever did.",
        labels=["channel"],
    )
    for state in channel_states():
        row = state.status
        failures.add_metric([state.channel], row.failures_total if row else 0)
        consecutive.add_metric([state.channel], row.consecutive_failures if row else 0)
        if row is not None and row.last_success is not None:
            success.add_metric([state.channel], row.last_success.timestamp())
    yield from (failures, consecutive, success)
