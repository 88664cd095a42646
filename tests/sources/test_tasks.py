"""The upload runs in a real Celery worker (Redis broker, the test database), not in eager mode."""

import time

import pytest
from django.urls import reverse

from medmax_review.sources.models import ImportRun, SourceRecord
from tests.conftest import PASSWORD
from tests.sources.test_views import _zip_upload

pytestmark = pytest.mark.worker


def test_import_upload_runs_in_worker_and_page_shows_report(client, project, admin_user, worker):
    assert client.login(username=admin_user.username, password=PASSWORD)

    response = client.post(
        reverse("import_upload", args=[project.slug]), {"format": "auto", "file": _zip_upload()}
    )
    run = ImportRun.objects.get()
    assert response.status_code == 302

    deadline = time.monotonic() + 60
    while run.status not in (ImportRun.DONE, ImportRun.FAILED) and time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited"
        time.sleep(0.3)
        run.refresh_from_db()

    assert run.status == ImportRun.DONE, run.errors
    assert (run.rows_total, run.rows_done, run.created) == (3, 3, 2)
    assert SourceRecord.objects.filter(project=project, import_run=run).count() == 2
    partial = client.get(
        reverse("import_run", args=[project.slug, run.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "hx-trigger" not in partial
    assert "bad JSON" in partial and "rows.jsonl" in partial
