"""dispatcher.list import (with a dry-run preview of what will change) and export as a download."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from dispatcher import services
from dispatcher.choices import Cause
from dispatcher.forms import ImportForm
from dispatcher.kamailio_list import DispatcherListError
from dispatcher.kamailio_weight import KamailioWeightRefused
from dispatcher.permissions import role_required


@role_required("admin")
@require_http_methods(["GET", "POST"])
def import_list(request):
    """POST with `preview` runs a dry run and shows the changes; POST with `apply` applies the same text."""
    form = ImportForm(request.POST or None, request.FILES or None)
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        text, replace = form.cleaned_data["text"], form.cleaned_data["replace"]
        apply = "apply" in request.POST
        try:
            result = services.import_dispatcher_list(
                text, replace=replace, dry_run=not apply, actor=request.user, cause=Cause.IMPORT
            )
        except DispatcherListError as exc:
            context["line_errors"] = exc.errors
            form.add_error(
                "text", f"{len(exc.errors)} line{'s' if len(exc.errors) != 1 else ''} could not be read; nothing was changed."
            )
        else:
            if apply:
                messages.success(
                    request, f"Imported: {len(result.changes)} change{'s' if len(result.changes) != 1 else ''} applied."
                )
                for kept in [*result.kept, *result.warnings]:
                    messages.warning(request, kept)
                return redirect("panel:config")
            context.update(preview=result.changes, kept=result.kept, warnings=result.warnings, text=text, replace=replace)
    return render(request, "config/import.html", context)


@role_required("admin")
@require_GET
def export_list(request):
    """The download; refused with the lines when a Kamailio would ignore their weights, unless ?anyway=1."""
    try:
        text = services.export_dispatcher_list(anyway=request.GET.get("anyway") == "1")
    except KamailioWeightRefused as exc:
        return render(request, "config/export_refused.html", {"line_errors": exc.errors}, status=409)
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="dispatcher-{stamp}.list"'
    return response
