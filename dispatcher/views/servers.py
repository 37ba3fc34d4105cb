"""The Servers view (the landing page) and the server's Maintenance / Disable / Return.

The toggle pattern as for a row (dispatcher/views/state.py): the button or the confirmation POSTs,
services.set_server_state changes every set's row at once, and the answer is the server's row partial.
"""

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from dispatcher import live, services
from dispatcher.choices import AdminState, Cause
from dispatcher.forms import StateChangeForm
from dispatcher.models import Server
from dispatcher.permissions import role_required
from dispatcher.views import wants_partial
from dispatcher.views.dashboard import board_context
from dispatcher.views.server_rows import build_servers, server_totals
from dispatcher.views.state import VERBS, _next


def servers_context(snap):
    context = board_context(snap)
    context["servers"] = build_servers(context["blocks"], snap)
    # The bar above one row per server counts servers; the per-set view's counts its rows.
    context["cluster"] = server_totals(context["cluster"], context["servers"])
    context["counting"] = "servers"
    return context


@role_required("viewer")
def servers(request):
    """One row per server; polled by htmx every 2 s, when it answers with the live fragment only."""
    context = servers_context(live.snapshot())
    template = "partials/_servers_live.html" if wants_partial(request) else "servers.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _server_row(pk, *, just_changed=False):
    server = get_object_or_404(Server, pk=pk)
    snap = live.snapshot()
    context = board_context(snap)
    if just_changed:
        # Saved a moment ago: not yet applied is in transit, only a refused publish is news now.
        for block in context["blocks"]:
            for dest_row in block.rows:
                dest_row.not_applied = context["publication"].publish_failed
    found = build_servers(context["blocks"], snap, server_ids={server.pk})
    if not found:
        raise Http404("This server lists no destination.")
    return found[0], context


def _confirm_context(request, row, form):
    state = form["state"].value()
    return {"server": row, "form": form, "state": state, "verb": VERBS.get(state, "Change"), "next": _next(request)}


@role_required("operator")
@require_GET
def confirm_server_state(request, pk, state):
    if state not in AdminState.values:
        state = AdminState.INACTIVE
    row, _ = _server_row(pk)
    form = StateChangeForm(initial={"state": state})
    template = "partials/_server_confirm.html" if wants_partial(request) else "server_confirm.html"
    return render(request, template, _confirm_context(request, row, form))


@role_required("operator")
@require_POST
def set_server_state(request, pk):
    row, _ = _server_row(pk)
    form = StateChangeForm(request.POST)
    if not form.is_valid():
        context = _confirm_context(request, row, form)
        if wants_partial(request):
            return reswap(retarget(render(request, "partials/_server_confirm.html", context), "#modal"), "innerHTML")
        return render(request, "server_confirm.html", context, status=400)
    services.set_server_state(
        row.server, form.cleaned_data["state"], actor=request.user, cause=Cause.USER, reason=form.cleaned_data["reason"]
    )
    if not wants_partial(request):
        return redirect(_next(request) or "panel:servers")
    row, context = _server_row(pk, just_changed=True)
    return render(request, "partials/_server_state_changed.html", {**context, "server": row})
