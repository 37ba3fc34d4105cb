"""A size limit on request bodies, checked on Content-Length before anything reads the body.

Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE only when request.body or request.POST is read; DRF's
parsers read the stream, so without this the import API took a 30 MiB body whole.
"""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

API_PREFIXES = ("/api/", "/rpc", "/metrics", "/healthz")


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self.refuse(request, "The Content-Length header is not a number.")
        limit = settings.MAX_BODY_BYTES
        if length > limit:
            return self.refuse(
                request,
                f"The request body is {length:,} bytes; the most this panel accepts is {limit:,} (LBPANEL_MAX_BODY_BYTES).",
            )
        return self.get_response(request)

    def refuse(self, request, message):
        if request.path.startswith(API_PREFIXES):
            return JsonResponse({"detail": message}, status=400)
        return render(request, "400.html", {"message": message}, status=400)
