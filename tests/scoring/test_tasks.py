"""The score_candidates task through a real broker and a real Celery worker."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from medmax_review.celery import app
from medmax_review.review.models import Candidate


def _broker_ready() -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:  # kombu raises transport-specific errors
        return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_score_task_runs_on_real_worker_and_twice_is_harmless(project, demo_rows, make_record,
                                                              make_candidate):
    if not django_settings.CELERY_BROKER_URL.startswith("redis://") or not _broker_ready():
        from tests.conftest import require_service

        require_service("Redis broker (CELERY_BROKER_URL=redis://...)")
    app.control.purge()
    record = make_record(demo_rows["vqarad-1582"])
    faithful = make_candidate(record, response="Right")
    swapped = make_candidate(record, response="Left", sample_index=1)

    # Enqueue the same work twice, as a redelivery would.
    call_command("score", project=project.slug)
    call_command("score", project=project.slug)

    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        MEDIA_ROOT=str(django_settings.MEDIA_ROOT),
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while Candidate.objects.filter(pk__in=[faithful.pk, swapped.pk], scores={}).exists():
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not score the candidates in 60 s"
            time.sleep(0.3)
        time.sleep(1.0)  # let the second (duplicate) task finish too
    finally:
        worker.terminate()
        worker.wait(timeout=20)

    faithful, swapped = (Candidate.objects.get(pk=c.pk) for c in (faithful, swapped))
    assert faithful.scores["consistency"]["band"] == "good"
    assert swapped.scores["consistency"]["band"] == "fail"
    assert set(swapped.slots.values_list("priority", flat=True)) == {swapped.priority}
