"""The panel's HTML views: small function-based views, one module per page."""


def wants_partial(request):
    """The one place that decides whether to answer with an htmx fragment instead of a page."""
    return bool(request.htmx) and not request.htmx.boosted
