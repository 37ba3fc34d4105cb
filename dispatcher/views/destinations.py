from django.db.models import Q
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers

from dispatcher import live
from dispatcher.models import StateEvent
from dispatcher.permissions import role_required
from dispatcher.views import wants_partial
from dispatcher.views.charts import bar_chart, calls_chart, rtt_chart
from dispatcher.views.rows import destinations_with_state_times, make_row

HISTORY_ROWS = 50


def _calls_by_proxy(snap, dest_id):
    """Each node's calls up on this server: from its dialog records, as every other count on the
    page, else (a node from before them) its heartbeat. The heartbeat's own count can lag: a call a
    worker took over from a dead node and its sibling worker closed stays in it until it expires."""
    out = []
    for node in snap.nodes:
        recorded = snap.node_calls.get(node["name"])
        n = recorded.get(dest_id, 0) if recorded is not None else node["destinations"].get(dest_id, {}).get("active", 0)
        out.append((node["name"], int(n)))
    return out


@role_required("viewer")
def destination(request, pk):
    """One server: what is set, what is live, its state history and its last probes."""
    dest = get_object_or_404(destinations_with_state_times(), pk=pk)
    snap = live.snapshot()
    context = {
        "row": make_row(dest, snap),
        "snap": snap,
        "rtt": rtt_chart(live.rtt_samples(pk)),
        "calls": bar_chart(_calls_by_proxy(snap, pk)),
        "calls_history": calls_chart(live.calls_samples(pk)),
    }
    if wants_partial(request):
        response = render(request, "partials/_destination_live.html", context)
    else:
        # Its own events and its server's (Maintenance/Return of the box in every set).
        events = StateEvent.objects.filter(Q(destination=dest) | Q(server=dest.server_id))
        context["events"] = events.select_related("actor")[:HISTORY_ROWS]
        response = render(request, "destination.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
