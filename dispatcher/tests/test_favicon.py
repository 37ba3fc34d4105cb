"""A favicon from our own static files (no CDN), so the Content-Security-Policy's img-src 'self' allows it."""


def test_every_page_links_the_favicon(client, db):
    html = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/panel/favicon.svg" type="image/svg+xml">' in html


def test_the_favicon_is_served_as_svg(client, db):
    response = client.get("/static/panel/favicon.svg")
    assert response.status_code == 200 and response["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(response.streaming_content if response.streaming else [response.content])


def test_favicon_ico_points_at_it(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/panel/favicon.svg"
