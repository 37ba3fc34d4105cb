from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render

login = auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True)
logout = auth_views.LogoutView.as_view()


def locked_out(request, original_response=None, credentials=None):
    """django-axes calls this once a user name or an address has too many failed logins: the login
    page again, saying why and for how long, with 429. The right password is refused too until then."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    form = AuthenticationForm(request, data=request.POST or None)
    form.errors.clear()
    form.add_error(
        None,
        f"Too many failed logins for this user or from this address. Logins are refused for {minutes} minutes; an admin can lift this with `manage.py axes_reset`.",
    )
    return render(request, "login.html", {"form": form, "next": request.POST.get("next", "")}, status=429)
