"""A worker killed mid-export: its late-acked task comes back and another worker rebuilds the
same version, byte-identical to an uninterrupted export, with no partial files left."""

import signal
import time

import pytest

from medmax_review.core import medmax
from medmax_review.exports import services
from medmax_review.exports.models import DatasetVersion
from tests.exports.conftest import approve_records, export
from tests.exports.test_takeover import folder_contents, partials

pytestmark = pytest.mark.worker

OPTIONS = {"split": "0.9,0.05,0.05", "images": "copy"}


def version_when(pk, ready, *, within: float) -> DatasetVersion:
    """The version once `ready(version)` holds, polled from the database."""
    give_up = time.monotonic() + within
    version = DatasetVersion.objects.get(pk=pk)
    while not ready(version):
        assert time.monotonic() < give_up, f"v{version.number} still {version.status} after {within} s"
        time.sleep(0.1)
        version.refresh_from_db()
    return version


def test_worker_killed_mid_export_then_restarted_rebuilds_identical_files(
    project, vqa_rad, worker_factory
):
    # given 600 approved rows (each VQA-RAD image under four tasks), read one row per batch so
    # the export takes long enough to be caught in the middle
    for task in (medmax.IMAGE_CAPTIONING, medmax.VISUAL_CHAT, medmax.IMAGE_GENERATION):
        approve_records(project, vqa_rad, task=task)
    env = {"EXPORT_BATCH_SIZE": "1", "CELERY_VISIBILITY_TIMEOUT": "3",
           "EXPORT_STALE_SECONDS": "3"}
    first = worker_factory(**env)
    version = services.dataset_version_create(project=project, options=OPTIONS)
    services.dataset_version_enqueue(version=version)  # no transaction here: sent at once
    version_when(version.pk, lambda v: v.rows_done >= 60, within=120)
    # when the worker is killed without warning
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = DatasetVersion.objects.get(pk=version.pk)
    folder = services.dataset_version_folder(killed)
    assert killed.status == "running" and 60 <= killed.rows_done < killed.rows_total == 600, (
        f"killed at {killed.rows_done} of {killed.rows_total}"
    )
    assert partials(folder), "the killed build left no partial files to clean up"
    # then a new worker gets the unacknowledged task back, takes the silent version over
    worker_factory(**env)
    rebuilt = version_when(version.pk, lambda v: v.status in ("done", "failed"), within=180)
    assert rebuilt.status == "done", rebuilt.error
    assert rebuilt.attempts == 2 and rebuilt.number == 1 and rebuilt.rows_done == 600
    # and its files are those of an export of the same set that nobody interrupted
    _, reference = export(project, **OPTIONS)
    assert partials(folder) == []
    assert folder_contents(folder) == folder_contents(reference)
    # v2's CHANGELOG.md compares it with v1, so it is the one file that differs.
    reference_files = DatasetVersion.objects.get(project=project, number=2).manifest["files"]
    assert {k: v for k, v in rebuilt.manifest["files"].items() if k != "CHANGELOG.md"} == {
        k: v for k, v in reference_files.items() if k != "CHANGELOG.md"}
