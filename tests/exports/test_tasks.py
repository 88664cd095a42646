"""The export launched from the page runs in a real Celery worker (Redis, the test database)."""

import time

import pytest
from django.urls import reverse

from medmax_review.exports.models import DatasetVersion
from medmax_review.projects import services as project_services
from medmax_review.projects.models import ADMIN
from medmax_review.sources.models import SourceRecord
from medmax_review.sources.services import records_import
from tests.conftest import DEMO_DATA, PASSWORD
from tests.exports.conftest import approve_records

pytestmark = pytest.mark.worker


def test_export_launch_runs_in_worker_and_page_shows_manifest(client, worker):
    # given a project with the approved demo VQA-RAD set (committed: the worker must see it)
    project, _ = project_services.project_get_or_create(slug="worker-export")
    admin = project_services.user_create(username="wendy", password=PASSWORD)
    project_services.membership_set(project=project, user=admin, role=ADMIN)
    records_import(project=project, path=DEMO_DATA / "vqa_rad.jsonl")
    approve_records(project, SourceRecord.objects.filter(project=project).order_by("id"))
    assert client.login(username="wendy", password=PASSWORD)
    # when an export is launched from the page
    response = client.post(
        reverse("export_list", args=[project.slug]),
        {"format": "medmax", "images": "copy", "split": "0.9,0.05,0.05", "min_agreeing": "0"},
    )
    assert response.status_code == 302
    version = DatasetVersion.objects.get(project=project)
    deadline = time.monotonic() + 60
    while version.status not in ("done", "failed") and time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited"
        time.sleep(0.3)
        version.refresh_from_db()
    # then the worker built it and the progress partial stops polling and shows the result
    assert version.status == "done", version.error
    assert (version.rows_total, version.rows_done, version.manifest["rows"]) == (150, 150, 150)
    partial = client.get(
        reverse("export_detail", args=[project.slug, version.number]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "hx-trigger" not in partial and "train.jsonl" in partial
