"""Configuration pages (admin): sets, destinations, source rules, probe and proxy settings.

Forms validate on the model so errors land on the field; every save and delete goes through
dispatcher.services, which audits it and publishes the table after commit.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dispatcher import live, services
from dispatcher.choices import PROBE_PRESETS, Cause
from dispatcher.forms import (
    DestinationForm,
    DispatcherSetForm,
    ProbePresetForm,
    ProbeSettingsForm,
    ProxySettingsForm,
    SourceRuleForm,
)
from dispatcher.models import Destination, DispatcherSet, ProbeSettings, ProxySettings, SourceRule
from dispatcher.permissions import role_required

admin_page = role_required("admin")


def _add_service_errors(form, exc):
    """A ValidationError from services.save_config, on the form's field where it has one."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def _edit(request, form_class, instance, *, title, back="panel:config", initial=None, template="config/form.html", extra=None):
    form = form_class(request.POST or None, instance=instance, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_config(form.save(commit=False), actor=request.user, cause=Cause.USER)
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved {saved}.")
            if warning := getattr(form, "weight_warning", lambda: "")():
                messages.warning(request, warning)
            return redirect(back)
    return render(request, template, {"form": form, "title": title, "back": back, **(extra or {})})


def _delete(request, instance, *, what, impact="", refused=(), back="panel:config"):
    """`refused`: why services will not delete it (a set in use), shown instead of the button."""
    if request.method == "POST":
        label = str(instance)
        try:
            services.delete_config(instance, actor=request.user, cause=Cause.USER, reason=request.POST.get("reason", ""))
        except services.SetInUse as exc:
            messages.error(request, f"Could not delete {label}: {exc}")
        else:
            messages.success(request, f"Deleted {what} {label}.")
        return redirect(back)
    context = {"object": instance, "what": what, "impact": impact, "refused": refused, "back": back}
    return render(request, "config/delete.html", context)


@admin_page
def overview(request):
    sets = DispatcherSet.objects.annotate(n_destinations=Count("destinations")).prefetch_related("destinations")
    context = {
        "sets": sets,
        "rules": SourceRule.objects.select_related("dset"),
        "probe": ProbeSettings.load(),
        "proxy": ProxySettings.objects.select_related("default_set").filter(pk=1).first() or ProxySettings.load(),
        "presets": PROBE_PRESETS,
    }
    return render(request, "config/overview.html", context)


# --- sets -----------------------------------------------------------------------


@admin_page
@require_http_methods(["GET", "POST"])
def set_new(request):
    return _edit(request, DispatcherSetForm, DispatcherSet(), title="New dispatcher set")


@admin_page
@require_http_methods(["GET", "POST"])
def set_edit(request, pk):
    dset = get_object_or_404(DispatcherSet, pk=pk)
    return _edit(request, DispatcherSetForm, dset, title=f"Edit {dset}")


@admin_page
@require_http_methods(["GET", "POST"])
def set_delete(request, pk):
    dset = get_object_or_404(DispatcherSet, pk=pk)
    # Only a set nothing uses can go (services.delete_set), so no destination, rule or call goes with it.
    refused = services.why_set_stays(dset) if request.method == "GET" else ()
    return _delete(request, dset, what="dispatcher set", refused=refused)


# --- destinations -----------------------------------------------------------------


@admin_page
@require_http_methods(["GET", "POST"])
def destination_new(request):
    initial = {"dset": request.GET.get("set")} if request.GET.get("set") else None
    return _edit(request, DestinationForm, Destination(), title="New destination", initial=initial)


@admin_page
@require_http_methods(["GET", "POST"])
def destination_edit(request, pk):
    dest = get_object_or_404(Destination.objects.select_related("dset"), pk=pk)
    return _edit(request, DestinationForm, dest, title=f"Edit {dest} (set {dest.dset.setid})")


@admin_page
@require_http_methods(["GET", "POST"])
def destination_delete(request, pk):
    dest = get_object_or_404(Destination.objects.select_related("dset"), pk=pk)
    snap = live.snapshot()
    calls = snap.for_destination(dest.id)
    active = calls.active
    impact = f"{dest.uri} has {active} active call{'s' if active != 1 else ''}" + (
        " (no proxy reporting, so this is unknown)."
        if snap.stale
        else f" counted, and more unknown: {calls.unknown_reason}."
        if calls.unvouched
        else ". Calls in progress go on; new calls go elsewhere."
    )
    return _delete(request, dest, what="destination", impact=impact)


# --- source rules -------------------------------------------------------------------


@admin_page
@require_http_methods(["GET", "POST"])
def rule_new(request):
    return _edit(request, SourceRuleForm, SourceRule(), title="New source rule")


@admin_page
@require_http_methods(["GET", "POST"])
def rule_edit(request, pk):
    rule = get_object_or_404(SourceRule.objects.select_related("dset"), pk=pk)
    return _edit(request, SourceRuleForm, rule, title=f"Edit source rule {rule.network}")


@admin_page
@require_http_methods(["GET", "POST"])
def rule_delete(request, pk):
    rule = get_object_or_404(SourceRule.objects.select_related("dset"), pk=pk)
    return _delete(request, rule, what="source rule", impact=f"Calls from {rule.network} then go to the default set.")


# --- settings -----------------------------------------------------------------------


@admin_page
@require_http_methods(["GET", "POST"])
def probe_settings(request):
    return _edit(
        request,
        ProbeSettingsForm,
        ProbeSettings.load(),
        title="Probe settings",
        back="panel:config-probes",
        template="config/probes.html",
        extra={"presets": PROBE_PRESETS},
    )


@admin_page
@require_POST
def probe_preset(request):
    form = ProbePresetForm(request.POST)
    if form.is_valid():
        services.apply_probe_preset(form.cleaned_data["preset"], actor=request.user, cause=Cause.USER)
        messages.success(request, f"Probe settings set to the {form.cleaned_data['preset']} preset.")
    else:
        messages.error(request, "Unknown preset: " + ", ".join(form.errors.get("preset", [])))
    return redirect("panel:config-probes")


@admin_page
@require_http_methods(["GET", "POST"])
def proxy_settings(request):
    return _edit(request, ProxySettingsForm, ProxySettings.load(), title="Proxy settings")
