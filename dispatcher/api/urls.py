from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from dispatcher.api import calls, views
from dispatcher.api.carriers import CarriersView
from dispatcher.api.health import healthz
from dispatcher.api.metrics import MetricsView
from dispatcher.api.rpc import JsonRpcView

router = DefaultRouter()
# Both /destinations/1/state and /destinations/1/state/ work: scripts are written either way.
router.trailing_slash = "/?"
router.register("sets", views.DispatcherSetViewSet, basename="set")
router.register("destinations", views.DestinationViewSet, basename="destination")
router.register("servers", views.ServerViewSet, basename="server")
router.register("source-rules", views.SourceRuleViewSet, basename="sourcerule")
router.register("events", views.StateEventViewSet, basename="event")
router.register("nodes", views.NodeViewSet, basename="node")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("api/v1/probe-settings/", views.ProbeSettingsView.as_view(), name="probe-settings"),
    path("api/v1/stats/", views.StatsView.as_view(), name="stats"),
    path("api/v1/carriers/", CarriersView.as_view(), name="carriers"),
    path("api/v1/dispatcher.list", views.DispatcherListView.as_view(), name="dispatcher-list"),
    path("api/v1/calls/", calls.CallListView.as_view(), name="calls"),
    # A Call-ID may hold any character but a space: everything after calls/ is it (a final / is dropped).
    re_path(r"^api/v1/calls/(?P<call_id>.+?)/?$", calls.CallDetailView.as_view(), name="call"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script as a file, so the docs pass the CSP without inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("rpc", JsonRpcView.as_view(), name="rpc"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("healthz", healthz, name="healthz"),
]
