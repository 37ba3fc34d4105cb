from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico on pages without a <link rel="icon"> (the API docs, raw JSON)."""

    def get_redirect_url(self, *args, **kwargs):
        return static("panel/favicon.svg")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", FaviconView.as_view()),
    path("", include("dispatcher.api.urls")),
    path("", include("dispatcher.urls")),
]
