from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from dispatcher import live, publication
from dispatcher.alerts.models import proxy_busy_pct
from dispatcher.models import ProbeSettings
from dispatcher.permissions import role_required
from dispatcher.views import wants_partial
from dispatcher.views.rows import build_board, departed_nodes, node_rows


def _probe_timing():
    """ping_interval and ping_timeout_ms in one read (ProbeSettings.load() would insert a missing row)."""
    fields = ("ping_interval", "ping_timeout_ms")
    row = ProbeSettings.objects.filter(pk=1).values(*fields).first()
    return row or {name: ProbeSettings._meta.get_field(name).default for name in fields}


def board_context(snap):
    blocks, cluster = build_board(snap)
    pub = publication.status(snap)
    for block in blocks:
        for row in block.rows:
            applied = pub.applied(row.dest)
            row.not_applied = applied is False
            row.applied_unknown = applied is None
    probing = live.probing_stopped(snap, **_probe_timing())
    return {
        "snap": snap,
        "blocks": blocks,
        "cluster": cluster,
        "nodes": node_rows(snap, proxy_busy_pct()),
        "departed": departed_nodes(snap),
        "publication": pub,
        "probing_stopped": probing,
    }


@role_required("viewer")
def dashboard(request):
    """The whole board; polled by htmx every 2 s, when it answers with the live fragment only."""
    snap = live.snapshot()
    context = board_context(snap)
    template = "partials/_live.html" if wants_partial(request) else "dashboard.html"
    response = render(request, template, context)
    # The same URL serves page and fragment: keep caches and the back button from mixing them up.
    patch_vary_headers(response, ["HX-Request"])
    return response
