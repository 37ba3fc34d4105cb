"""A database that refuses writes (read-only standby, full disk, revoked privileges) or does not
answer gets a 503 that says so, in the panel, its htmx fragments, the API and JSON-RPC alike,
instead of a generic 500. Bad input (IntegrityError, DataError) is not an outage and is left to
the views, which answer 400/409.
"""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

# SQLSTATE classes that mean "the database cannot take this now", not "this request is wrong":
# 08 connection, 25 transaction state (25006 read-only), 40 rollback (serialization, deadlock),
# 53 insufficient resources, 57 operator intervention (shutdown), 58 system error.
OUTAGE_CLASSES = {"08", "25", "40", "53", "57", "58"}
INSUFFICIENT_PRIVILEGE = "42501"
RETRY_AFTER_SECONDS = 5
JSON_PREFIXES = ("/api/", "/rpc", "/metrics", "/healthz")


def _sqlstate(exc):
    return getattr(exc.__cause__, "sqlstate", None) or ""


def is_outage(exc):
    """True for a database error that is the database's state, not the request's fault."""
    if not isinstance(exc, DatabaseError):
        return False
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    sqlstate = _sqlstate(exc)
    return sqlstate == INSUFFICIENT_PRIVILEGE or sqlstate[:2] in OUTAGE_CLASSES


def database_problem(exc):
    """What is wrong with the database, in words, with the database's own first line of detail."""
    cause = exc.__cause__ or exc
    lines = str(cause).strip().splitlines()
    detail = lines[0] if lines else type(cause).__name__
    sqlstate = _sqlstate(exc)
    lowered = detail.lower()
    if sqlstate == "25006" or "read-only" in lowered or "readonly" in lowered:
        what = "it is read-only (a standby, or default_transaction_read_only is on)"
    elif sqlstate == INSUFFICIENT_PRIVILEGE:
        what = "lbpanel's database user lacks a privilege"
    elif sqlstate.startswith("53") or "disk" in lowered:
        what = "it is out of resources (disk full or too many connections)"
    elif "locked" in lowered or sqlstate.startswith("40"):
        what = "it is busy with another change"
    elif isinstance(exc, (OperationalError, InterfaceError)) or sqlstate[:2] in {"08", "57"}:
        what = "it is not answering"
    else:
        what = "it refused the statement"
    return f"{what} ({detail})"


def outage_response(request, exc):
    """The 503 for `exc`, in the shape the caller reads: JSON, JSON-RPC, an htmx fragment or a page."""
    problem = database_problem(exc)
    writing = request.method not in ("GET", "HEAD", "OPTIONS")
    headline = "Nothing was saved" if writing else "This page could not be read"
    advice = (
        "Check PostgreSQL (a read-only standby, a full disk, lbpanel's privileges) and try again. "
        "Calls are not affected: the proxies route on their own."
    )
    message = f"{headline}: the database {problem}. {advice}"
    if request.path.startswith("/rpc"):
        response = JsonResponse(
            {"jsonrpc": "2.0", "error": {"code": 503, "message": "Database Unavailable", "data": message}, "id": None}, status=503
        )
    elif request.path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": message, "database": problem}, status=503)
    else:
        partial = bool(getattr(request, "htmx", False)) and not request.htmx.boosted
        context = {"headline": headline, "problem": problem, "advice": advice}
        if partial:
            response = HttpResponse(render_to_string("partials/_database_error.html", context), status=503)
            # panel.js swaps a response carrying this header even though it is a 503.
            response["HX-Retarget"], response["HX-Reswap"] = "#modal", "innerHTML"
        else:
            # Rendered without the request: the page must not need the database it reports on.
            response = HttpResponse(render_to_string("database_error.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["X-Lbpanel-Error"] = "database"
    return response


class DatabaseOutageMiddleware:
    """Turns a database outage raised by any view (panel, API, JSON-RPC) into outage_response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if not is_outage(exc):
            return None
        log.error("database outage on %s %s: %s", request.method, request.path, database_problem(exc))
        return outage_response(request, exc)
