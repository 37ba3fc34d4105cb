"""The Carriers page: one row per carrier (dispatcher.carriers), polled by htmx like the Servers page."""

from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from dispatcher import live
from dispatcher.carriers import carrier_figures
from dispatcher.permissions import role_required
from dispatcher.views import wants_partial
from lbcore.carriers import RECENT_SECONDS


@role_required("viewer")
def carriers(request):
    snap = live.snapshot()
    context = {"snap": snap, "figures": carrier_figures(snap), "recent_minutes": RECENT_SECONDS // 60}
    template = "partials/_carriers_live.html" if wants_partial(request) else "carriers.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
