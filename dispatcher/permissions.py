"""Who may open a page: `role_required("operator")` on every panel view.

Anonymous users go to the login page (htmx requests get HX-Redirect, so a poll never swaps the
login form into a table row); a logged-in user without the role gets the 403 page.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django_htmx.http import HttpResponseClientRedirect

from dispatcher.roles import RANK, has_role


def role_required(role):
    if role not in RANK or role is None:
        raise ValueError(f"role_required: unknown role {role!r}")

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    return HttpResponseClientRedirect(f"{settings.LOGIN_URL}?next={request.htmx.current_url_abs_path or '/'}")
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorator
