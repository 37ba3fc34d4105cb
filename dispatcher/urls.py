"""The panel's pages. The API (/api/, /rpc, /metrics, /healthz) is mounted separately by dispatcher.api."""

from django.urls import path, re_path

from dispatcher.alerts import views as alerts
from dispatcher.views import audit, auth, calls, carriers, config, config_import, dashboard, destinations, servers, state, users

app_name = "panel"

urlpatterns = [
    # Servers first: people think in Asterisk boxes; the per-set board is one click away.
    path("", servers.servers, name="servers"),
    path("sets/", dashboard.dashboard, name="dashboard"),
    path("carriers/", carriers.carriers, name="carriers"),
    path("servers/<int:pk>/state/", servers.set_server_state, name="set-server-state"),
    path("servers/<int:pk>/confirm/<str:state>/", servers.confirm_server_state, name="confirm-server-state"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("destinations/<int:pk>/", destinations.destination, name="destination"),
    path("destinations/<int:pk>/state/", state.set_state, name="set-state"),
    path("destinations/<int:pk>/confirm/<str:state>/", state.confirm_state, name="confirm-state"),
    path("audit/", audit.audit, name="audit"),
    path("calls/", calls.call_list, name="calls"),
    re_path(r"^calls/(?P<call_id>.+)$", calls.call_detail, name="call"),  # a Call-ID may hold a /
    path("config/", config.overview, name="config"),
    path("config/sets/new/", config.set_new, name="config-set-new"),
    path("config/sets/<int:pk>/", config.set_edit, name="config-set-edit"),
    path("config/sets/<int:pk>/delete/", config.set_delete, name="config-set-delete"),
    path("config/destinations/new/", config.destination_new, name="config-destination-new"),
    path("config/destinations/<int:pk>/", config.destination_edit, name="config-destination-edit"),
    path("config/destinations/<int:pk>/delete/", config.destination_delete, name="config-destination-delete"),
    path("config/rules/new/", config.rule_new, name="config-rule-new"),
    path("config/rules/<int:pk>/", config.rule_edit, name="config-rule-edit"),
    path("config/rules/<int:pk>/delete/", config.rule_delete, name="config-rule-delete"),
    path("config/probes/", config.probe_settings, name="config-probes"),
    path("config/probes/preset/", config.probe_preset, name="config-probe-preset"),
    path("config/proxy/", config.proxy_settings, name="config-proxy"),
    path("config/import/", config_import.import_list, name="config-import"),
    path("config/export/", config_import.export_list, name="config-export"),
    path("config/alerts/", alerts.alert_settings, name="config-alerts"),
    path("config/alerts/test/", alerts.test_alert, name="config-alerts-test"),
    path("config/users/", users.users, name="config-users"),
    path("config/users/<int:pk>/role/", users.user_role, name="config-user-role"),
]
