from django.core.paginator import Paginator
from django.shortcuts import render

from dispatcher.forms import AuditFilterForm
from dispatcher.models import StateEvent
from dispatcher.permissions import role_required

PAGE_SIZE = 50


@role_required("viewer")
def audit(request):
    """Every state and configuration change, newest first, filterable by destination, kind, cause and user."""
    form = AuditFilterForm(request.GET or None)
    events = form.filter(StateEvent.objects.select_related("actor"))
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit.html", {"form": form, "page": page, "query": query.urlencode()})
