"""GET /metrics in Prometheus text format, built at scrape time by a custom collector.

Counters are summed over the proxies alive now, so one that dies takes its share with it and
the sum drops; Prometheus's rate() treats that as a counter reset, which is what it is.
"""

import ipaddress

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rest_framework import permissions
from rest_framework.views import APIView

from dispatcher.api.auth import AUTHENTICATION, client_address
from dispatcher.api.carrier_metrics import carrier_metrics
from dispatcher.api.metrics_alerting import alerting_families
from dispatcher.choices import AdminState, HealthState
from dispatcher.live import snapshot
from dispatcher.models import Destination
from dispatcher.roles import VIEWER, has_role
from dispatcher.servers import server_figures
from lbcore import rules

DEST_LABELS = ["id", "set", "uri", "duid"]


class LbpanelCollector:
    def collect(self):
        snap = snapshot()
        yield GaugeMetricFamily("lbpanel_redis_up", "1 when Redis answered this scrape.", value=0 if snap.redis_error else 1)
        yield from self._destinations(snap)
        yield from self._servers(snap)
        yield from self._nodes(snap)
        yield from alerting_families(snap)
        yield from carrier_metrics(snap)

    def _destinations(self, snap):
        admin = GaugeMetricFamily(
            "lbpanel_destination_admin_state",
            "Admin state set by people or the API (1 for the current one).",
            labels=DEST_LABELS + ["state"],
        )
        health = GaugeMetricFamily(
            "lbpanel_destination_health",
            "Health from probes and proxies (1 for the current one); unknown for a disabled destination, which nothing probes.",
            labels=DEST_LABELS + ["health"],
        )
        usable = GaugeMetricFamily(
            "lbpanel_destination_usable", "1 when the destination takes new calls (active and not down).", labels=DEST_LABELS
        )
        active = GaugeMetricFamily(
            "lbpanel_destination_active_calls",
            "Calls in progress, summed over live proxies; absent while unknown.",
            labels=DEST_LABELS,
        )
        unknown = GaugeMetricFamily(
            "lbpanel_destination_active_calls_unknown",
            "1 while no live proxy can vouch for the active count (a proxy restarted or stopped reporting with calls up).",
            labels=DEST_LABELS,
        )
        cps = GaugeMetricFamily(
            "lbpanel_destination_cps",
            "New INVITEs per second over the last 10 s, summed over live proxies; absent while no proxy reports.",
            labels=DEST_LABELS,
        )
        invites = CounterMetricFamily(
            "lbpanel_destination_invites", "INVITEs sent, summed over live proxies.", labels=DEST_LABELS
        )
        answered = CounterMetricFamily(
            "lbpanel_destination_answered", "INVITEs answered 2xx, summed over live proxies.", labels=DEST_LABELS
        )
        failovers = CounterMetricFamily(
            "lbpanel_destination_failovers",
            "Calls moved away from this destination, summed over live proxies.",
            labels=DEST_LABELS,
        )
        rtt = GaugeMetricFamily(
            "lbpanel_destination_probe_rtt_seconds", "Round-trip time of the last answered probe.", labels=DEST_LABELS
        )
        for dest in Destination.objects.select_related("dset"):
            labels = [str(dest.id), str(dest.dset.setid), dest.uri, dest.duid]
            effective = rules.known_health(dest.admin_state, rules.effective_health(snap.health.get(dest.id), dest.health))
            state, rtt_ms = effective.state, effective.rtt_ms
            live = snap.for_destination(dest.id)
            for value in AdminState.values:
                admin.add_metric(labels + [value], 1 if dest.admin_state == value else 0)
            for value in HealthState.values:
                health.add_metric(labels + [value], 1 if state == value else 0)
            usable.add_metric(labels, 1 if rules.usable(dest, effective) else 0)
            unknown.add_metric(labels, 1 if live.active_known is None else 0)
            if live.active_known is not None:
                active.add_metric(labels, live.active_known)
            if live.cps_known is not None:
                cps.add_metric(labels, live.cps_known)
            invites.add_metric(labels, live.invites)
            answered.add_metric(labels, live.answered)
            failovers.add_metric(labels, live.failovers)
            if rtt_ms is not None:
                rtt.add_metric(labels, rtt_ms / 1000.0)
        yield from (admin, health, usable, active, unknown, cps, invites, answered, failovers, rtt)

    def _servers(self, snap):
        # `id` as well as the name: two boxes may carry the same DUID in different sets.
        labels = ["id", "server"]
        active = GaugeMetricFamily(
            "lbpanel_server_active_calls",
            "Calls in progress on the server, summed over every set and live proxy; absent while unknown.",
            labels=labels,
        )
        unknown = GaugeMetricFamily(
            "lbpanel_server_active_calls_unknown",
            "1 while the server's count is unknown (no proxy reporting, or one that carried its calls restarted or stopped reporting).",
            labels=labels,
        )
        cps = GaugeMetricFamily(
            "lbpanel_server_cps", "New calls per second to the server now, over every set and live proxy.", labels=labels
        )
        drained = GaugeMetricFamily(
            "lbpanel_server_drained",
            "1 when no set sends the server new calls and no call is up on it in any set: safe to restart; "
            "0 when not; absent while unknown.",
            labels=labels,
        )
        dns_failing = GaugeMetricFamily(
            "lbpanel_server_dns_failing",
            "1 while the server's host name has stopped resolving on a live proxy (which uses its last known addresses).",
            labels=labels,
        )
        for figures in server_figures(snap):
            values = [str(figures.server.id), figures.server.name]
            unknown.add_metric(values, 1 if figures.active_calls is None else 0)
            if figures.active_calls is not None:
                active.add_metric(values, figures.active_calls)
            if figures.drained is not None:
                drained.add_metric(values, 1 if figures.drained else 0)
            if figures.cps is not None:
                cps.add_metric(values, figures.cps)
            if not figures.dns_unknown:  # nobody looks the name up: absent, not 0 or 1
                dns_failing.add_metric(values, 1 if figures.dns_warning else 0)
        yield from (active, unknown, cps, drained, dns_failing)

    def _nodes(self, snap):
        published = GaugeMetricFamily("lbpanel_table_version", "Version of the routing table last published to Redis.")
        if snap.table_version is not None:
            published.add_metric([], snap.table_version)
        age = GaugeMetricFamily(
            "lbpanel_node_heartbeat_age_seconds", "Seconds since each live proxy's last heartbeat.", labels=["node"]
        )
        version = GaugeMetricFamily(
            "lbpanel_node_table_version", "Routing table version each live proxy has applied.", labels=["node"]
        )
        for node in snap.nodes:
            age.add_metric([node.get("name", "")], node["age"])
            if node.get("table_version") is not None:
                version.add_metric([node.get("name", "")], node["table_version"])
        yield from (published, age, version)


def address_allowed(address):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in settings.METRICS_ALLOWED_NETWORKS)


class MetricsAccess(permissions.BasePermission):
    """A valid token (read-only is enough) or session of a viewer, or a scrape from LBPANEL_METRICS_ALLOWED."""

    message = "Use a token, or scrape from an address in LBPANEL_METRICS_ALLOWED."

    def has_permission(self, request, view):
        return address_allowed(client_address(request)) or has_role(request.user, VIEWER)


class MetricsView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [MetricsAccess]

    @extend_schema(exclude=True)
    def get(self, request):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(LbpanelCollector())
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
