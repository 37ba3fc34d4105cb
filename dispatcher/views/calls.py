"""The Calls page: search the call records (dispatcher.calls) and show one call as a ladder.

The search form GETs this page; htmx swaps in the results partial only (the URL keeps the query,
so a search can be bookmarked or sent). Redis away is said on the page, never a stack trace.
"""

from django import forms
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from redis.exceptions import RedisError

from dispatcher import calls, live
from dispatcher.permissions import role_required
from dispatcher.redis_client import get_redis
from dispatcher.views import wants_partial
from lbcore.calls import CALL_ID_MAX

PAGE_LIMIT = 100
REDIS_AWAY = "Redis, where call records are kept, cannot be read now; try again in a moment."


class CallSearchForm(forms.Form):
    call_id = forms.CharField(required=False, max_length=CALL_ID_MAX, label="Call-ID")
    number = forms.CharField(required=False, max_length=64, help_text="Part of the From or To user.")
    server = forms.CharField(required=False, max_length=100, help_text="Name or id.")
    carrier = forms.CharField(required=False, max_length=120)
    final_code = forms.CharField(required=False, max_length=3, label="Final code", help_text="503 or 5xx.")
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def filters(self):
        """calls.Filters, or None with the errors added to the form (each on its field)."""
        data = self.cleaned_data
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Must not be before since.")
            return None
        code, ids = "", (None, None)
        try:
            code = calls.check_code(data.get("final_code", ""))
        except calls.FilterError as exc:
            self.add_error(exc.field, exc.message)
        try:
            ids = calls.server_filter(data["server"]) if data.get("server") else ids
        except calls.FilterError as exc:
            self.add_error(exc.field, exc.message)
        if self.errors:
            return None
        return calls.Filters(
            call_id=data.get("call_id", "").strip(),
            number=data.get("number", "").strip(),
            server_ids=ids[0],
            destination_ids=ids[1],
            carrier=data.get("carrier", "").strip(),
            final_code=code,
            since=data.get("since"),
            until=data.get("until"),
        )


@role_required("viewer")
def call_list(request):
    form = CallSearchForm(request.GET)
    context = {"form": form, "result": None, "error": "", "limit": PAGE_LIMIT}
    if form.is_valid() and (found := form.filters()) is not None:
        try:
            result = calls.search(get_redis(), found, limit=PAGE_LIMIT, dialog_timeout=calls.dialog_timeout())
            calls.name_servers(result.calls)
            context["result"] = result
        except RedisError:
            context["error"] = REDIS_AWAY
    context["dropped"] = calls.dropped_records(live.snapshot())
    template = "partials/_call_results.html" if wants_partial(request) else "calls.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@role_required("viewer")
def call_detail(request, call_id):
    context = {"call_id": call_id, "call": None, "result": None, "error": ""}
    try:
        call, result = calls.find_call(get_redis(), call_id, calls.dialog_timeout())
        if call is not None:
            calls.name_servers([call])
        context.update(call=call, result=result)
    except RedisError:
        context["error"] = REDIS_AWAY
    return render(request, "call.html", context, status=200 if context["call"] or context["error"] else 404)
