"""Users and their role (admin only). Roles are the viewer/operator/admin groups."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dispatcher import services
from dispatcher.forms import UserCreateForm, UserRoleForm
from dispatcher.permissions import role_required


@role_required("admin")
@require_http_methods(["GET", "POST"])
def users(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = services.create_user(data["username"], data["password"], data["role"], actor=request.user)
        messages.success(request, f"Created {user.username} as {form.cleaned_data['role']}.")
        return redirect("panel:config-users")
    people = (
        get_user_model().objects.order_by("username").prefetch_related(Prefetch("groups", queryset=Group.objects.only("name")))
    )
    return render(request, "config/users.html", {"form": form, "people": people})


@role_required("admin")
@require_POST
def user_role(request, pk):
    person = get_object_or_404(get_user_model(), pk=pk)
    form = UserRoleForm(request.POST)
    if person == request.user:
        # An admin demoting or deactivating themselves locks the panel out of its last admin.
        messages.error(request, "You cannot change your own role or deactivate yourself.")
    elif form.is_valid():
        try:
            services.set_user_role(person, form.cleaned_data["role"], active=form.cleaned_data["active"], actor=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{person.username} is now {services.account_state(person)}.")
    else:
        messages.error(request, "Choose viewer, operator or admin.")
    return redirect("panel:config-users")
