"""Error pages: our 404 and 500 templates, no stack traces with DEBUG off."""

from django.test import RequestFactory
from django.views.defaults import server_error


def test_it_renders_the_500_page_without_a_request_context():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert b"the panel hit an error" in response.content and b"Traceback" not in response.content


def test_it_renders_the_404_page(client, viewer, settings, redis):
    settings.DEBUG = False
    client.force_login(viewer)
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and b"404 \xc2\xb7 not found" in response.content
