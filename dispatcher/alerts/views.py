"""Configuration → Alerts (admin only): where alerts go, which rules run, thresholds, a test button."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dispatcher.alerts import engine, status
from dispatcher.alerts.forms import AlertSettingsForm
from dispatcher.alerts.models import AlertEpisode, AlertSettings
from dispatcher.alerts.services import save_alert_settings
from dispatcher.permissions import role_required

admin_page = role_required("admin")
RECENT = 20


@admin_page
@require_http_methods(["GET", "POST"])
def alert_settings(request):
    form = AlertSettingsForm(request.POST or None, instance=AlertSettings.load())
    if request.method == "POST" and form.is_valid():
        try:
            save_alert_settings(form.save(commit=False), actor=request.user)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            messages.success(request, "Saved the alert settings.")
            return redirect("panel:config-alerts")
    context = {
        "form": form,
        "delivery": status.channel_states(),  # the saved settings' channels, not the form's
        "open_episodes": AlertEpisode.objects.filter(closed=None).order_by("-opened")[:RECENT],
        "recent": AlertEpisode.objects.exclude(closed=None).order_by("-closed")[:RECENT],
    }
    return render(request, "config/alerts.html", context)


@admin_page
@require_POST
def test_alert(request):
    """Sends the saved settings' channels a test message; answers the per-channel result (htmx partial)."""
    config = AlertSettings.load()
    results = engine.send_test(config, request.user)
    return render(request, "partials/_alert_test_result.html", {"results": results})
