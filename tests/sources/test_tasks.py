"""The upload runs in a real Celery worker (Redis broker, the test database), not in eager mode."""

import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse

from medmax_review.celery import app
from medmax_review.sources.models import ImportRun, SourceRecord
from tests.conftest import PASSWORD, require_service
from tests.sources.test_views import _zip_upload

pytestmark = pytest.mark.worker


def _redis_up(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme != "redis":
        return False
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def worker(transactional_db, settings):
    if not _redis_up(settings.CELERY_BROKER_URL):
        require_service("Redis (CELERY_BROKER_URL=redis://...)")
    if connection.vendor != "postgresql":
        require_service("PostgreSQL (DATABASE_URL=postgres://...)")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "False",
    }
    env.pop("TEST_DATABASE_NAME", None)
    app.control.purge()  # nothing left over from an earlier run
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=django_settings.BASE_DIR, env=env,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
