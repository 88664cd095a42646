"""The upload runs in a real Celery worker (Redis broker, the test database), not in eager mode."""

import io
import json
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from medmax_review.sources import services
from medmax_review.sources.image_pool import POOL_MIN
from medmax_review.sources.models import ImageAsset, ImportRun, SourceRecord
from tests.conftest import PASSWORD
from tests.sources.conftest import demo_row, png_bytes
from tests.sources.test_views import _zip_upload

pytestmark = pytest.mark.worker


def _wait_until_finished(run: ImportRun, worker, *, seconds: float) -> None:
    """Poll the run until the worker has finished it (or the time is up), the worker alive."""
    deadline = time.monotonic() + seconds
    while run.status not in (ImportRun.DONE, ImportRun.FAILED) and time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited"
        time.sleep(0.3)
        run.refresh_from_db()


def test_import_upload_runs_in_worker_and_page_shows_report(client, project, admin_user, worker):
    assert client.login(username=admin_user.username, password=PASSWORD)

    response = client.post(
        reverse("import_upload", args=[project.slug]), {"format": "auto", "file": _zip_upload()}
    )
    run = ImportRun.objects.get()
    assert response.status_code == 302

    _wait_until_finished(run, worker, seconds=60)

    assert run.status == ImportRun.DONE, run.errors
    assert (run.rows_total, run.rows_done, run.created) == (3, 3, 2)
    assert SourceRecord.objects.filter(project=project, import_run=run).count() == 2
    partial = client.get(
        reverse("import_run", args=[project.slug, run.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "hx-trigger" not in partial
    assert "bad JSON" in partial and "rows.jsonl" in partial


def test_import_in_a_prefork_worker_checks_new_images_in_the_pool(project, worker_factory, tmp_path):
    # Given a prefork worker, whose tasks run in a daemonic child process, and a ZIP of rows
    # over more new images than the pool takes
    worker = worker_factory(pool="prefork")
    count = POOL_MIN + 6
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("rows.jsonl", "".join(
            json.dumps(demo_row(i, image=f"img/{i}.png")) + "\n" for i in range(count)))
        for i in range(count):
            zf.writestr(f"img/{i}.png", png_bytes(color=i, size=(8 + i % 7, 8)))
    upload = SimpleUploadedFile("many.zip", out.getvalue(), content_type="application/zip")

    # When the worker imports it
    run = services.import_run_launch(project=project, upload=upload, fmt="auto", options={})
    _wait_until_finished(run, worker, seconds=90)

    # Then every row is in, and the import's log line says the pool checked the images
    assert run.status == ImportRun.DONE, run.errors
    assert run.created == count == ImageAsset.objects.count()
    log = (tmp_path / "worker0.log").read_text(errors="replace")
    assert "image pool unavailable" not in log
    assert f"{count} new images checked, {count} in a pool of" in log, log[-3000:]
