"""A worker killed mid-export: its late-acked task comes back and another worker rebuilds the
same version, byte-identical to an uninterrupted export, with no partial files left."""

import signal

import pytest

from medmax_review.core import medmax
from medmax_review.exports import services
from medmax_review.exports.models import DatasetVersion
from tests.exports.conftest import approve_records, export
from tests.exports.test_takeover import folder_contents, partials
from tests.generation.test_worker import _wait

pytestmark = pytest.mark.worker

OPTIONS = {"split": "0.9,0.05,0.05", "images": "copy"}


def _version(pk) -> DatasetVersion:
    return DatasetVersion.objects.get(pk=pk)


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
    _wait(lambda: _version(version.pk).rows_done >= 60, 120, "the first worker to be under way")
    # when the worker is killed without warning
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = _version(version.pk)
    folder = services.dataset_version_folder(killed)
    assert killed.status == "running" and 60 <= killed.rows_done < killed.rows_total == 600, (
        f"killed at {killed.rows_done} of {killed.rows_total}"
    )
    assert partials(folder), "the killed build left no partial files to clean up"
    # then a new worker gets the unacknowledged task back, takes the silent version over
    worker_factory(**env)
    _wait(lambda: _version(version.pk).status in ("done", "failed"), 180, "the rebuilt version")
    rebuilt = _version(version.pk)
    assert rebuilt.status == "done", rebuilt.error
    assert rebuilt.attempts >= 2 and rebuilt.number == 1 and rebuilt.rows_done == 600
    # and its files are those of an export of the same set that nobody interrupted
    _, reference = export(project, **OPTIONS)
    assert partials(folder) == []
    assert folder_contents(folder) == folder_contents(reference)
    assert rebuilt.manifest["files"] == DatasetVersion.objects.get(
        project=project, number=2
    ).manifest["files"]
