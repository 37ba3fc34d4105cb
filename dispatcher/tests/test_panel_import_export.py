"""dispatcher.list from the browser: a dry run that shows what will change, then apply; export as a download."""

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from dispatcher.models import Destination, StateEvent

SEED = (Path(__file__).parent / "fixtures" / "seed-dispatcher.list").read_text()


def test_a_dry_run_shows_the_changes_and_writes_nothing(panel_admin, redis):
    html = panel_admin.post("/config/import/", {"text": SEED, "preview": "1"}).content.decode()
    assert 'data-testid="preview"' in html and "Dry run: 8 changes" in html
    assert "+ set 1" in html and "Apply these 8 changes" in html
    assert not Destination.objects.exists() and not StateEvent.objects.exists()


def test_apply_imports_and_audits(panel_admin, admin_user, redis):
    response = panel_admin.post("/config/import/", {"text": SEED, "apply": "1"})
    assert response.status_code == 302 and response["Location"] == "/config/"
    assert Destination.objects.count() == 6
    assert StateEvent.objects.filter(cause="import", actor=admin_user).exists()


def test_it_reads_an_uploaded_file(panel_admin, redis):
    upload = SimpleUploadedFile("dispatcher.list", SEED.encode(), content_type="text/plain")
    html = panel_admin.post("/config/import/", {"upload": upload, "preview": "1"}).content.decode()
    assert "Dry run: 8 changes" in html


def test_it_names_each_bad_line_and_changes_nothing(panel_admin, cluster, redis):
    text = "1 sip:127.0.0.1:25090 0 0 weight=5\n1 not-a-uri 0 0\nx sip:127.0.0.1:25091\n"
    html = panel_admin.post("/config/import/", {"text": text, "apply": "1"}).content.decode()
    errors = html.split('data-testid="line-errors"')[1]
    assert '<td class="mono">2</td>' in errors and '<td class="mono">3</td>' in errors
    assert 'data-field="text"' in html and "nothing was changed" in html
    assert Destination.objects.count() == 3


def test_it_asks_for_text_or_a_file(panel_admin, redis):
    assert "Paste a dispatcher.list or choose a file." in panel_admin.post("/config/import/", {"preview": "1"}).content.decode()


def test_replace_preview_lists_deletions(panel_admin, cluster, redis):
    html = panel_admin.post(
        "/config/import/", {"text": "1 sip:127.0.0.1:25081 0 0 weight=50;duid=ast1\n", "replace": "on", "preview": "1"}
    ).content.decode()
    assert "- set 1 sip:127.0.0.1:25082" in html and "replace: the table becomes exactly this file" in html
    assert '<input type="hidden" name="replace" value="on">' in html


def test_export_is_a_download_of_the_table(panel_admin, cluster, redis):
    response = panel_admin.get("/config/export/")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="dispatcher-')
    body = response.content.decode()
    assert "1 sip:127.0.0.1:25082 1 0" in body and "1 sip:127.0.0.1:25083 4 0" in body
