"""Maintenance, drain, disable and return to service: the django-htmx-patterns toggle.

The row's button (or the confirmation's) POSTs here; the state changes through services.set_state
and the answer is the row partial, which replaces the row in place.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from dispatcher import live, publication, services
from dispatcher.choices import AdminState, Cause
from dispatcher.forms import StateChangeForm
from dispatcher.permissions import role_required
from dispatcher.views import wants_partial
from dispatcher.views.rows import destinations_with_state_times, make_row

VERBS = {
    AdminState.INACTIVE: "Put into maintenance",
    AdminState.DISABLED: "Disable",
    AdminState.ACTIVE: "Return to service",
}


def _row(dest_id, snap=None):
    snap = snap or live.snapshot()
    return make_row(get_object_or_404(destinations_with_state_times(), pk=dest_id), snap)


def _next(request):
    """Where a plain (non-htmx) form goes back to: the detail page or the dashboard."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


def _confirm_context(request, row, form):
    state = form["state"].value()
    return {"row": row, "form": form, "state": state, "verb": VERBS.get(state, "Change"), "next": _next(request)}


@role_required("operator")
@require_GET
def confirm_state(request, pk, state):
    if state not in AdminState.values:
        state = AdminState.INACTIVE
    row = _row(pk)
    form = StateChangeForm(initial={"state": state})
    template = "partials/_confirm.html" if wants_partial(request) else "confirm.html"
    return render(request, template, _confirm_context(request, row, form))


@role_required("operator")
@require_POST
def set_state(request, pk):
    row = _row(pk)
    form = StateChangeForm(request.POST)
    if not form.is_valid():
        context = _confirm_context(request, row, form)
        if wants_partial(request):
            response = render(request, "partials/_confirm.html", context)
            return reswap(retarget(response, "#modal"), "innerHTML")
        return render(request, "confirm.html", context, status=400)
    services.set_state(
        row.dest, form.cleaned_data["state"], actor=request.user, cause=Cause.USER, reason=form.cleaned_data["reason"]
    )
    snap = live.snapshot()
    row, pub = _row(pk, snap), publication.status(snap)
    # Saved, but Redis refused the publish: say so now, not with a 500 (the beat retries).
    row.not_applied = pub.publish_failed
    if not wants_partial(request):
        if row.not_applied:
            messages.warning(request, f"{VERBS.get(row.dest.admin_state, 'Change')} {row.name}: saved. {pub.message}")
        return redirect(_next(request) or "panel:dashboard")
    return render(request, "partials/_state_changed.html", {"row": row, "publication": pub})
